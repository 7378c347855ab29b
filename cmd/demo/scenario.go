package main

import "time"

// The demo's source tables, as the superuser creates them. The replicator
// role is made their owner (it creates the publication, which needs that)
// and may create the publication in the database.
const schemaSQL = `
CREATE TABLE customers (
    id         bigint PRIMARY KEY,
    full_name  text NOT NULL,
    email      text,
    balance    numeric(20,2),
    vip        boolean NOT NULL DEFAULT false,
    signed_up  timestamptz NOT NULL DEFAULT now(),
    profile    jsonb
);
CREATE TABLE tickets (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    subject     text,
    hours       numeric(6,2),
    urgent      boolean NOT NULL DEFAULT false,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    details     jsonb
);
-- 9007199254740993 is 2^53 + 1 and the balance has 19 digits: neither fits
-- a float64, so they show that values travel exactly.
INSERT INTO customers VALUES
    (1, 'Ada Lovelace', 'ada@example.com', 1815.12, true, '2024-03-01 09:30:00.123456+00', '{"lang": "en", "tags": ["math"]}'),
    (2, 'Li Lei', 'lilei@example.cn', 0.50, false, '2024-05-17 14:02:11.5+08', '{"lang": "zh"}'),
    (9007199254740993, 'Big Key', NULL, 12345678901234567.89, false, '2025-01-01 00:00:00+00', NULL);
INSERT INTO tickets VALUES
    (101, 1, 'Invoice is wrong', 2.50, true, '2025-02-03 10:11:12.999+00', '{"channel": "email"}'),
    (102, 2, 'Password reset', 0.25, false, '2025-02-04 08:00:00+00', NULL),
    (103, 9007199254740993, 'Export to CSV', NULL, false, '2025-02-05 16:45:30+00', '{"channel": "chat", "lang": "en"}');
ALTER TABLE customers OWNER TO replicator;
ALTER TABLE tickets OWNER TO replicator;
GRANT CREATE ON DATABASE demo TO replicator;
`

// change is one transaction the demo makes once the snapshot has landed.
type change struct {
	what string
	sql  []string
}

var changes = []change{
	{"insert a customer with a NULL email, and a ticket", []string{
		`INSERT INTO customers (id, full_name, email, balance) VALUES (3, 'Grace Hopper', NULL, 42.00)`,
		`INSERT INTO tickets (id, customer_id, subject, hours, urgent, details) VALUES (104, 3, 'Cannot log in', 1.50, true, '{"channel": "phone"}')`,
	}},
	{"update several columns, one jsonb", []string{
		`UPDATE customers SET balance = balance + 100.25, vip = true, profile = profile || '{"tier": "gold"}' WHERE id = 2`,
	}},
	{"set values to NULL", []string{
		`UPDATE customers SET email = NULL WHERE id = 1`,
		`UPDATE tickets SET subject = NULL, hours = 3.25, urgent = false WHERE id = 101`,
	}},
	{"delete: a hard delete in Feishu, a soft delete in GPTBots", []string{
		`DELETE FROM customers WHERE id = 9007199254740993`,
		`DELETE FROM tickets WHERE id = 102`,
	}},
}

// The target tables, in cmd/fakes' -tables format. Feishu columns are typed
// like PostgreSQL's; GPTBots has five field types, so jsonb goes to TEXT and
// timestamps lose their fraction.
const fakeTablesYAML = `
feishu:
  workspace_id: workspace_demo
  tables:
    customers:
      - {name: customer_id, type: bigint, unique: true, not_null: true}
      - {name: name, type: text, not_null: true}
      - {name: email, type: text}
      - {name: balance, type: numeric}
      - {name: vip, type: boolean}
      - {name: signed_up, type: timestamptz}
      - {name: profile, type: jsonb}
gptbots:
  tables:
    "` + ticketsTableID + `":
      - {name: ticket_id, type: INT, unique: true, required: true}
      - {name: customer_id, type: INT}
      - {name: subject, type: TEXT}
      - {name: hours, type: FLOAT}
      - {name: urgent, type: BOOLEAN}
      - {name: opened_at, type: DATETIME}
      - {name: details, type: TEXT}
      - {name: deleted, type: BOOLEAN}
`

// ticketsTableID is the GPTBots table id of tickets: GPTBots names tables by
// numeric ids.
const ticketsTableID = "1890000000000000001"

// configTemplate is the replicator configuration; the %s are the source
// port, the state directory, the shutdown timeout and the metrics address. Secrets and URLs are
// ${VAR} references to the environment, as in production.
const configTemplate = `source:
  dsn: postgres://replicator:${PGPASSWORD}@127.0.0.1:%s/demo?sslmode=disable
  slot: replicator_demo
  publication: replicator_demo
  status_interval: 1s
state:
  dir: %s
pipeline:
  flush_interval: 200ms
  shutdown_timeout: %s
log:
  level: info
  format: text
http:
  listen: %s
targets:
  lark:
    type: feishu
    base_url: ${FEISHU_BASE_URL}
    workspace_id: ${FEISHU_WORKSPACE_ID}
    user_access_token: ${FEISHU_USER_ACCESS_TOKEN}
  bots:
    type: gptbots
    base_url: ${GPTBOTS_BASE_URL}
    api_key: ${GPTBOTS_API_KEY}
mappings:
  - source: public.customers
    target: lark
    table: customers
    columns:
      id: customer_id
      full_name: name
      email:
      balance:
      vip:
      signed_up:
      profile:
  - source: public.tickets
    target: bots
    table: "` + ticketsTableID + `"
    columns:
      id: ticket_id
      customer_id:
      subject:
      hours:
      urgent:
      opened_at:
      details:
    on_delete: {soft: deleted}
`

// shutdownTimeout is the configuration's pipeline.shutdown_timeout; the
// demo waits that long for the replicator to drain, plus stopSlack.
const (
	shutdownTimeout = 10 * time.Second
	stopSlack       = 10 * time.Second
)

// mirrors are the demo's tables as the comparison sees them.
var mirrors = []*mirror{
	{
		source: "customers", target: "Feishu", targetTable: "customers", dumpPath: "feishu/customers",
		precision: time.Microsecond,
		columns: []column{
			{"id", "customer_id", kindNumber},
			{"full_name", "name", kindText},
			{"email", "email", kindText},
			{"balance", "balance", kindNumber},
			{"vip", "vip", kindBool},
			{"signed_up", "signed_up", kindTime},
			{"profile", "profile", kindJSON},
		},
	},
	{
		source: "tickets", target: "GPTBots", targetTable: ticketsTableID, dumpPath: "gptbots/" + ticketsTableID,
		precision: time.Second, softDelete: "deleted", jsonText: true,
		columns: []column{
			{"id", "ticket_id", kindNumber},
			{"customer_id", "customer_id", kindNumber},
			{"subject", "subject", kindText},
			{"hours", "hours", kindNumber},
			{"urgent", "urgent", kindBool},
			{"opened_at", "opened_at", kindTime},
			{"details", "details", kindJSON},
		},
	},
}
