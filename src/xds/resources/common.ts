/**
 * Stage: xds. Small proto3-JSON fragments shared by the resource builders.
 */
export function socketAddress(address: string, port: number): object {
  return { socket_address: { address, port_value: port } };
}

/** ConfigSource for resources delivered over the same ADS stream. */
export const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

export function durationOf(ms: number): string {
  const s = Math.floor(ms / 1000);
  const rest = ms % 1000;
  return rest === 0 ? `${s}s` : `${s}.${String(rest).padStart(3, '0')}s`;
}
