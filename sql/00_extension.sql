-- The extension installs into schema powersync and needs the library preloaded.
CREATE EXTENSION powersync_pg;
SELECT extname, extversion, nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'powersync_pg';
SHOW wal_level;
