-- The IMMV SQL API: create_immv, refresh_immv, drop_immv, the powersync.immvs listing, the write
-- guard, and how DROP / ALTER of base tables treat a dependent IMMV.
CREATE TABLE api_author (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE api_book (id int PRIMARY KEY, author_id int REFERENCES api_author, title text, pages int);
INSERT INTO api_author VALUES (1, 'Le Guin'), (2, 'Lem');
INSERT INTO api_book VALUES (10, 1, 'The Dispossessed', 387), (11, 1, 'Lathe of Heaven', 184), (20, 2, 'Solaris', 204);

-- create returns the rows created; the table has a primary key built from the base keys
SELECT powersync.create_immv('api_books', $$
  SELECT b.id, b.title, upper(a.name) AS author, b.pages / 100 AS hundreds
    FROM api_book b JOIN api_author a ON a.id = b.author_id$$);
SELECT * FROM api_books ORDER BY id;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
  FROM pg_attribute a WHERE a.attrelid = 'api_books'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'api_books'::regclass AND contype = 'p';
SELECT relreplident FROM pg_class WHERE oid = 'api_books'::regclass;
SELECT name, base_tables, row_count FROM powersync.immvs;
SELECT definition FROM powersync.immvs WHERE name = 'api_books';

-- schema-qualified and quoted names
CREATE SCHEMA "API space";
SELECT powersync.create_immv('"API space"."Books by Author"',
  'SELECT b.id, a.name FROM api_book b JOIN api_author a ON a.id = b.author_id WHERE b.pages > 200');
SELECT * FROM "API space"."Books by Author" ORDER BY id;
SELECT powersync.create_immv('api_books', 'SELECT b.id FROM api_book b');

-- nobody writes to an IMMV directly, superuser included
INSERT INTO api_books VALUES (99, 'x', 'y', 1, 1);
UPDATE api_books SET title = 'x';
DELETE FROM api_books;
TRUNCATE api_books;
COPY api_books FROM stdin;
99	x	y	1	1
\.
SELECT count(*) FROM api_books;

-- refresh reports how many rows it had to change (0: the view was already correct)
SELECT powersync.refresh_immv('api_books');
SET session_replication_role = replica;   -- disables the maintenance triggers: the view drifts
UPDATE api_book SET title = 'Solaris (1961)' WHERE id = 20;
RESET session_replication_role;
SELECT title FROM api_books WHERE id = 20;
SELECT powersync.refresh_immv('api_books');
SELECT title FROM api_books WHERE id = 20;
SELECT powersync.refresh_immv('no_such_view');
SELECT powersync.refresh_immv('api_book');

-- maintenance runs as the view's owner: a writer needs no rights on the view
CREATE ROLE api_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON api_book, api_author TO api_writer;
SET ROLE api_writer;
INSERT INTO api_book VALUES (21, 2, 'Fiasco', 322);
SELECT * FROM api_books WHERE id = 21;
INSERT INTO api_books VALUES (98, 'x', 'y', 1, 1);
RESET ROLE;
SELECT title FROM api_books WHERE id = 21;

-- base tables cannot be dropped, nor used columns dropped or retyped, while an IMMV reads them
DROP TABLE api_author;
ALTER TABLE api_book DROP COLUMN pages;
ALTER TABLE api_book ALTER COLUMN title TYPE varchar(100);
ALTER TABLE api_book RENAME COLUMN title TO name;
ALTER TABLE api_author RENAME TO api_writer_table;  -- maintenance SQL names its tables
ALTER TABLE api_book DROP CONSTRAINT api_book_author_id_fkey;  -- maintenance relies on the foreign key
ALTER TABLE api_book ADD COLUMN isbn text;          -- columns the view does not read are free
UPDATE api_book SET isbn = 'x';
ALTER TABLE api_book DROP COLUMN isbn;
SELECT powersync.refresh_immv('api_books');

-- drop_immv removes the table, its triggers and its catalog rows
SELECT powersync.drop_immv('"API space"."Books by Author"');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'ps_immv_%' AND tgrelid = 'api_book'::regclass;
SELECT name FROM powersync.immvs;
SELECT powersync.drop_immv('api_author');

-- DROP TABLE of the IMMV itself also cleans up
SELECT powersync.create_immv('api_tmp', 'SELECT b.id, a.name FROM api_book b JOIN api_author a ON a.id = b.author_id');
DROP TABLE api_tmp;
SELECT count(*) AS catalog_rows FROM powersync.immv_catalog c WHERE c.immv::text = 'api_tmp';

-- DROP ... CASCADE of a base table drops the IMMV with it
SELECT count(*) AS triggers_before FROM pg_trigger WHERE tgname LIKE 'ps_immv_%';
DROP TABLE api_author CASCADE;
SELECT count(*) AS triggers_after FROM pg_trigger WHERE tgname LIKE 'ps_immv_%';
SELECT count(*) AS immvs FROM powersync.immvs;
SELECT count(*) AS catalog_rows FROM powersync.immv_catalog;
INSERT INTO api_book VALUES (30, 1, 'still writable', 1);
DROP TABLE api_book;
DROP SCHEMA "API space";
REVOKE ALL ON SCHEMA public FROM api_writer;
DROP ROLE api_writer;
