#!/usr/bin/env python3
# Seeded random write workload for the replication differential and crash tests: prints SQL (for
# psql) that creates the test tables/rules, or a stream of random transactions over them.
#   random_workload.py schema                 tables + helper functions (run once)
#   random_workload.py rules                  the sync rules YAML used by the tests
#   random_workload.py ops SEED N [SESSION]   N random statements in random transactions
# The statements are valid whatever the tables currently hold (ids that do not exist make
# UPDATE/DELETE match nothing; inserts use ON CONFLICT DO NOTHING), so several sessions, crashes
# and restarts never make the stream fail. Every UPDATE sets v to a value never used before, so a
# replayed (duplicated) change is detectable as two identical consecutive PUTs.
import random
import sys

SCHEMA = r"""
CREATE TABLE items (id text PRIMARY KEY, owner text, title text, body text, n int, flag boolean, v bigint NOT NULL);
ALTER TABLE items ALTER COLUMN body SET STORAGE EXTENDED;
CREATE TABLE todos (list_id int NOT NULL, seq int NOT NULL, title text, done boolean, v bigint NOT NULL);
CREATE UNIQUE INDEX todos_key ON todos (list_id, seq);
ALTER TABLE todos REPLICA IDENTITY USING INDEX todos_key;
CREATE TABLE members (user_id text NOT NULL, list_id int NOT NULL, role text, v bigint NOT NULL);
CREATE UNIQUE INDEX members_key ON members (user_id, list_id);
ALTER TABLE members REPLICA IDENTITY FULL;
CREATE TABLE events (kind text, payload text, v bigint NOT NULL);
-- bigint key: its source keys keep the id order (negative ids included).
CREATE TABLE counters (id bigint PRIMARY KEY, owner text, n int, v bigint NOT NULL);
ALTER TABLE events REPLICA IDENTITY NOTHING;
CREATE SEQUENCE workload_v START 1000000;
-- A deterministic, poorly compressible text of about n kB, so it is stored out of line (TOAST).
CREATE FUNCTION workload_blob(seed text, kb int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT string_agg(md5(seed || ':' || i), '') FROM generate_series(1, kb * 32) i $$;
"""

RULES = """bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner
    data:
      - SELECT id, owner, title, body, n, flag, v FROM items WHERE owner = bucket.owner
      - SELECT id, owner, n, v FROM counters WHERE owner = bucket.owner
  by_list:
    parameters: SELECT list_id FROM members WHERE user_id = request.user_id()
    data:
      - SELECT list_id || '-' || seq AS id, list_id, title, done, v FROM todos WHERE list_id = bucket.list_id
  list_members:
    parameters: SELECT list_id FROM members WHERE user_id = request.user_id()
    data:
      - SELECT user_id || ':' || list_id AS id, user_id, role, v FROM members WHERE list_id = bucket.list_id
  by_kind:
    accept_potentially_dangerous_queries: true
    parameters: SELECT request.parameters() ->> 'kind' AS kind
    data:
      - SELECT v AS id, kind, payload FROM events WHERE kind = bucket.kind
  everything:
    data:
      - SELECT id, title AS t, v FROM items
"""

USERS = ["u1", "u2", "u3", "u4", "u5"]
KINDS = ["a", "b", "c", None]


def lit(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class Workload:
    def __init__(self, seed, session):
        self.rnd = random.Random(seed * 1000 + session)
        self.session = session

    def item_id(self):
        return "s%d-i%d" % (self.session, self.rnd.randrange(60))

    def counter_id(self):
        return self.session * 1000 + self.rnd.randrange(-40, 40)

    def text(self):
        r = self.rnd.random()
        if r < 0.1:
            return None
        if r < 0.15:
            return "quote ' and \"json\" \\ é ✓"
        return "t%d" % self.rnd.randrange(1000)

    def body(self):
        r = self.rnd.random()
        if r < 0.2:
            return "NULL"
        if r < 0.55:  # large, out of line
            return "workload_blob(%s, %d)" % (lit("b%d" % self.rnd.randrange(10**6)), self.rnd.choice([3, 9, 20]))
        return lit("small body %d" % self.rnd.randrange(100))

    def statement(self):
        r = self.rnd.random()
        rnd = self.rnd
        v = "nextval('workload_v')"
        if r < 0.20:
            return ("INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING;"
                    % (lit(self.item_id()), lit(rnd.choice(USERS + [None])), lit(self.text()), self.body(),
                       lit(rnd.choice([None, rnd.randrange(-5, 10**6)])), lit(rnd.choice([None, True, False])), v))
        if r < 0.30:  # bucket move / partial update (body untouched: unchanged TOAST in the WAL)
            return "UPDATE items SET owner = %s, v = %s WHERE id = %s;" % (lit(rnd.choice(USERS + [None])), v,
                                                                          lit(self.item_id()))
        if r < 0.36:
            return "UPDATE items SET title = %s, n = coalesce(n, 0) + 1, v = %s WHERE id = %s;" % (
                lit(self.text()), v, lit(self.item_id()))
        if r < 0.39:
            return "UPDATE items SET body = %s, v = %s WHERE id = %s;" % (self.body(), v, lit(self.item_id()))
        if r < 0.42:  # primary key change
            return self.key_change()
        if r < 0.47:
            return "DELETE FROM items WHERE id = %s;" % lit(self.item_id())
        if r < 0.57:
            return ("INSERT INTO todos VALUES (%d, %d, %s, %s, %s) ON CONFLICT DO NOTHING;"
                    % (rnd.randrange(6), self.session * 1000 + rnd.randrange(30), lit(self.text()),
                       lit(rnd.choice([None, True, False])), v))
        if r < 0.64:
            return "UPDATE todos SET done = NOT coalesce(done, false), title = %s, v = %s WHERE list_id = %d AND seq = %d;" % (
                lit(self.text()), v, rnd.randrange(6), self.session * 1000 + rnd.randrange(30))
        if r < 0.67:  # moves the todo to another list (key change under USING INDEX identity)
            seq = self.session * 1000 + rnd.randrange(30)
            to = rnd.randrange(6)
            return ("UPDATE todos SET list_id = %d, v = %s WHERE list_id = %d AND seq = %d AND NOT EXISTS "
                    "(SELECT 1 FROM todos WHERE list_id = %d AND seq = %d);" % (to, v, rnd.randrange(6), seq, to, seq))
        if r < 0.70:
            return "DELETE FROM todos WHERE list_id = %d AND seq = %d;" % (
                rnd.randrange(6), self.session * 1000 + rnd.randrange(30))
        if r < 0.76:
            return ("INSERT INTO members VALUES (%s, %d, %s, %s) ON CONFLICT DO NOTHING;"
                    % (lit(rnd.choice(USERS)), rnd.randrange(6), lit(rnd.choice(["owner", "viewer", None])), v))
        if r < 0.80:
            return "UPDATE members SET role = %s, v = %s WHERE user_id = %s AND list_id = %d;" % (
                lit(rnd.choice(["owner", "viewer", None])), v, lit(rnd.choice(USERS)), rnd.randrange(6))
        if r < 0.84:
            return "DELETE FROM members WHERE user_id = %s AND list_id = %d;" % (lit(rnd.choice(USERS)), rnd.randrange(6))
        if r < 0.93:
            return "INSERT INTO events VALUES (%s, %s, %s);" % (lit(rnd.choice(KINDS)), lit(self.text()), v)
        if r < 0.945:
            return ("INSERT INTO counters VALUES (%d, %s, 0, %s) ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, "
                    "n = counters.n + 1, v = EXCLUDED.v;" % (self.counter_id(), lit(rnd.choice(USERS + [None])), v))
        if r < 0.952:
            new, old = self.counter_id(), self.counter_id()
            return ("UPDATE counters SET id = %d, v = %s WHERE id = %d AND NOT EXISTS (SELECT 1 FROM counters WHERE "
                    "id = %d);" % (new, v, old, new))
        if r < 0.96:
            return "DELETE FROM counters WHERE id = %d;" % self.counter_id()
        if r < 0.975:
            return "TRUNCATE events;"
        if r < 0.985:
            return "TRUNCATE todos;"
        return "DELETE FROM items WHERE owner = %s;" % lit(rnd.choice(USERS))

    def key_change(self):
        new, old = self.item_id(), self.item_id()
        return ("UPDATE items SET id = %s, v = nextval('workload_v') WHERE id = %s AND NOT EXISTS "
                "(SELECT 1 FROM items WHERE id = %s);" % (lit(new), lit(old), lit(new)))

    def transactions(self, count):
        out = []
        left = count
        while left > 0:
            size = min(left, self.rnd.choice([1, 1, 2, 5, 20, 60]))
            left -= size
            kind = self.rnd.random()
            out.append("BEGIN;")
            for i in range(size):
                if kind > 0.9 and i == size // 2:
                    out.append("SAVEPOINT sp;")
                out.append(self.statement())
                if kind > 0.9 and i == size // 2:
                    out.append("ROLLBACK TO SAVEPOINT sp;")
            out.append("ROLLBACK;" if 0.85 < kind <= 0.9 else "COMMIT;")
        return out


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: random_workload.py schema | rules | ops SEED N [SESSION]")
    if argv[1] == "schema":
        print(SCHEMA)
    elif argv[1] == "rules":
        sys.stdout.write(RULES)
    elif argv[1] == "ops":
        w = Workload(int(argv[2]), int(argv[4]) if len(argv) > 4 else 0)
        print("\n".join(w.transactions(int(argv[3]))))
    else:
        sys.exit("unknown mode " + argv[1])


if __name__ == "__main__":
    main(sys.argv)
