/**
 * Stage: decode. Typed security policies (Istio's security.istio.io kinds), Envoy-free.
 */
import type { Origin } from '../diag/diagnostic.js';
import type { MtlsMode } from './types.js';

export type MtlsSetting = MtlsMode | 'UNSET';

export interface PeerAuthenticationSpec {
  selector?: Record<string, string>;
  mode: MtlsSetting;
  /** Per workload port. */
  portLevel: Record<number, MtlsSetting>;
}

/** A field of a source or operation: values that must match (any of) and values that must not (none of). */
export interface Match {
  values?: string[];
  not?: string[];
}

export interface AuthzSource {
  principals: Match;
  requestPrincipals: Match;
  namespaces: Match;
  /** `<namespace>/<serviceAccount>` or `<serviceAccount>` (the policy's namespace). */
  serviceAccounts: Match;
  trustDomains: Match;
  ipBlocks: Match;
  remoteIpBlocks: Match;
}

export interface AuthzOperation {
  hosts: Match;
  ports: Match;
  methods: Match;
  paths: Match;
}

export interface AuthzCondition {
  key: string;
  values?: string[];
  notValues?: string[];
  at: Origin;
}

export interface AuthzRule {
  from: AuthzSource[];
  to: AuthzOperation[];
  when: AuthzCondition[];
  at: Origin;
}

export interface AuthorizationPolicySpec {
  selector?: Record<string, string>;
  action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  /** CUSTOM: the Mesh extension provider (envoyExtAuthzHttp / envoyExtAuthzGrpc) that decides. */
  provider?: string;
  /** `istio.io/dry-run: "true"`: evaluated and logged as Envoy shadow rules, deciding nothing. */
  dryRun: boolean;
  rules: AuthzRule[];
}

export interface JwtRule {
  issuer: string;
  audiences: string[];
  jwksUri?: string;
  jwks?: string;
  fromHeaders: { name: string; prefix?: string }[];
  fromParams: string[];
  forwardOriginalToken: boolean;
  outputClaimToHeaders: { header: string; claim: string }[];
  /** Cookies that may carry the token. */
  fromCookies: string[];
  /** A header that receives the verified payload (base64url JSON), as Istio's outputPayloadToHeader. */
  outputPayloadToHeader?: string;
  /** How long Envoy waits for the jwksUri (default 5 s). */
  timeoutMs?: number;
  at: Origin;
}

export interface RequestAuthenticationSpec {
  selector?: Record<string, string>;
  jwtRules: JwtRule[];
}
