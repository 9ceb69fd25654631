// Authentication providers for CONNECT and AUTH_CHALLENGE: a provider names its
// method and returns fresh credentials each time it is asked (token refresh).

export interface AuthProvider {
  readonly method: string;
  /** Called for CONNECT and for every AUTH_CHALLENGE; return current credentials. */
  getAuthData(): Promise<Uint8Array>;
}

/** Token auth: a fixed JWT, or a function called for every (re)connect and refresh. */
export function tokenAuth(token: string | (() => string | Promise<string>)): AuthProvider {
  const enc = new TextEncoder();
  return {
    method: 'token',
    async getAuthData() {
      return enc.encode(typeof token === 'string' ? token : await token());
    },
  };
}
