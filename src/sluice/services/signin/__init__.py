"""Sign-in through an OpenID Provider (OIDC): settings, the provider's documents and keys, ID token
checks, the sign-in use cases and the Sluice sessions they open."""
