-- powersync_pg install script, assembled by the Makefile from sql/install/*.sql in name order.
-- Each part owns one area (rules API, replication storage, pull API, IMMV); this part holds what all share.
\echo Use "CREATE EXTENSION powersync_pg" to load this file. \quit
