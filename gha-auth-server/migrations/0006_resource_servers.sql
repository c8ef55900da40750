-- Resource servers: the audiences whose tokens a client may introspect (RFC 7662) besides its
-- own, space-separated like `audiences`. Empty for every client registered before. Portable as
-- 0001 (SQLite and PostgreSQL).
ALTER TABLE clients ADD COLUMN resource_audiences TEXT NOT NULL DEFAULT '';
