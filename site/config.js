// Where the website finds the public API. The default is the API on the site's own origin,
// as voltfleet-proxy (and a CloudFront distribution with an /api/* behaviour) serves both.
// A deployment whose API lives on another origin replaces this one file, for instance with
//   export const API_BASE = "https://api.example.com/api/v1";
// and lists the site's origin in the API's `api.cors_origins` (and the API's origin in the
// site's Content-Security-Policy `connect-src`).
export const API_BASE = "/api/v1";
