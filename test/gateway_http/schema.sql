-- Source tables of the gateway protocol suite; replicated by the real worker under rules.yaml.
CREATE TABLE items (id text PRIMARY KEY, owner text NOT NULL, v text);
CREATE TABLE urgent (id text PRIMARY KEY, owner text NOT NULL, v text);
CREATE TABLE announcements (id text PRIMARY KEY, v text);
CREATE TABLE members (id text PRIMARY KEY, user_id text NOT NULL, group_id text NOT NULL);
CREATE TABLE group_items (id text PRIMARY KEY, group_id text NOT NULL, v text);
CREATE TABLE project_items (id text PRIMARY KEY, project text NOT NULL, v text);
