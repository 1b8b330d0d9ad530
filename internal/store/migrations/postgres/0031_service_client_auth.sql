-- Spine schema, version 31: client certificates (mTLS) per service.
-- client_ca holds the PEM certificates that verify a client's certificate,
-- client_auth says what a handshake without a verified one gets: '' (no
-- client certificate asked for), 'require' or 'optional'.
ALTER TABLE services ADD COLUMN client_ca TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN client_auth TEXT NOT NULL DEFAULT '';
