-- Spine schema, version 36: the key-value space's secrets stored in
-- plaintext, in an index of their own, empty once sealing has migrated them:
-- a node's start checks them (Reseal, ResealPlaintext) with one probe of it
-- instead of reading every private key. Its condition is the dialect's
-- plaintextSecrets (store/sealed.go, plaintextSecretsWhere) word for word,
-- which a test holds equal: the planner uses the index only for a query
-- that says the same.
CREATE INDEX kv_plaintext_secrets ON kv (key) WHERE (substr(key, length(key) - 3) = '.key' OR key IN ('spine/dns01/secret', 'spine/tls/ticket-keys', 'spine/tls/ech-keys', 'spine/quic/keys', 'spine/secrets/canary')) AND substr(value, 1, 13) <> 'spine-sealed:'::bytea;
