/**
 * Stage: xds. The router filter: always present, always last.
 */
import { anyType } from '../type-urls.js';
import type { HttpFilterPlugin } from './index.js';

export const routerFilter: HttpFilterPlugin = {
  name: 'envoy.filters.http.router',
  build: () => ({
    name: 'envoy.filters.http.router',
    typed_config: { '@type': anyType('envoy.extensions.filters.http.router.v3.Router') },
  }),
};
