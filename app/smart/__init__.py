"""SMART App Launch for patient apps: registered public clients, the authorization code flow
with PKCE (Authlib's grants behind a small Starlette adapter), refresh tokens, revocation and
signed id_tokens."""
