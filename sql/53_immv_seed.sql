-- The seed scenario: customers / orders / line_items, and an IMMV of line items carrying their
-- order's and customer's columns, which sync rules read with one table per query
-- ("SELECT * FROM line_item_view WHERE customer_id = bucket.customer_id").
CREATE TABLE customers (id uuid PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id uuid NOT NULL REFERENCES customers ON DELETE CASCADE,
                     status text NOT NULL DEFAULT 'open', created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00Z');
CREATE TABLE line_items (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders ON DELETE CASCADE,
                         sku text NOT NULL, quantity int NOT NULL, price numeric(10, 2) NOT NULL);
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON line_items (order_id);
INSERT INTO customers VALUES ('00000000-0000-0000-0000-00000000000a', 'Ada', 'ada@example.com'),
                             ('00000000-0000-0000-0000-00000000000b', 'Brian', NULL);
INSERT INTO orders (id, customer_id) VALUES (1, '00000000-0000-0000-0000-00000000000a'),
                                            (2, '00000000-0000-0000-0000-00000000000a'),
                                            (3, '00000000-0000-0000-0000-00000000000b');
INSERT INTO line_items VALUES (11, 1, 'tea', 2, 4.50), (12, 1, 'mug', 1, 9.00), (21, 2, 'tea', 10, 4.50),
                              (31, 3, 'pot', 1, 30.00);

SELECT powersync.create_immv('line_item_view', $$
  SELECT li.id, li.sku, li.quantity, li.price, li.quantity * li.price AS total,
         o.id AS order_id, o.status AS order_status, o.created_at AS ordered_at,
         c.id AS customer_id, c.name AS customer_name
    FROM line_items li
    JOIN orders o ON o.id = li.order_id
    JOIN customers c ON c.id = o.customer_id$$);
-- the key is the line item's id plus its order's and customer's: a real primary key, so the view
-- replicates with REPLICA IDENTITY DEFAULT like any table
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'line_item_view'::regclass AND contype = 'p';

-- what a bucket "by customer" reads
PREPARE bucket(uuid) AS SELECT id, sku, quantity, total, order_id, order_status, customer_name
  FROM line_item_view WHERE customer_id = $1 ORDER BY id;
EXECUTE bucket('00000000-0000-0000-0000-00000000000a');

-- a line item's change reaches its customer's rows
UPDATE line_items SET quantity = 3 WHERE id = 11;
INSERT INTO line_items VALUES (13, 2, 'spoon', 4, 1.25);
DELETE FROM line_items WHERE id = 12;
EXECUTE bucket('00000000-0000-0000-0000-00000000000a');
-- an order or customer change reaches every row below it
UPDATE orders SET status = 'shipped' WHERE id = 2;
UPDATE customers SET name = 'Ada L.' WHERE id = '00000000-0000-0000-0000-00000000000a';
EXECUTE bucket('00000000-0000-0000-0000-00000000000a');
-- moving an order to another customer moves its line items to that customer's bucket
UPDATE orders SET customer_id = '00000000-0000-0000-0000-00000000000b' WHERE id = 1;
EXECUTE bucket('00000000-0000-0000-0000-00000000000a');
EXECUTE bucket('00000000-0000-0000-0000-00000000000b');
-- deleting a customer cascades through orders and line items and empties its bucket
DELETE FROM customers WHERE id = '00000000-0000-0000-0000-00000000000b';
EXECUTE bucket('00000000-0000-0000-0000-00000000000b');
SELECT powersync.refresh_immv('line_item_view') AS drift;
SELECT name, base_tables, row_count FROM powersync.immvs WHERE name = 'line_item_view';
