-- Demo schema: lists owned by users, todos in lists. Used by `make demo` and the end-to-end tests.
CREATE TABLE lists (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  owner_id text NOT NULL DEFAULT (current_setting('request.jwt.claims', true)::jsonb ->> 'sub'),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE todos (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  list_id uuid NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
  description text NOT NULL,
  completed boolean NOT NULL DEFAULT false,
  created_by text DEFAULT (current_setting('request.jwt.claims', true)::jsonb ->> 'sub'),
  completed_at timestamptz
);

-- Uploads from clients run as this role (gateway --crud-role app_user) with the JWT claims set,
-- so row-level security keeps users to their own lists.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_user') THEN CREATE ROLE app_user; END IF;
END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON lists, todos TO app_user;
ALTER TABLE lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY lists_owner ON lists TO app_user
  USING (owner_id = current_setting('request.jwt.claims', true)::jsonb ->> 'sub')
  WITH CHECK (owner_id = current_setting('request.jwt.claims', true)::jsonb ->> 'sub');
CREATE POLICY todos_owner ON todos TO app_user
  USING (EXISTS (SELECT 1 FROM lists l WHERE l.id = list_id
                 AND l.owner_id = current_setting('request.jwt.claims', true)::jsonb ->> 'sub'));
