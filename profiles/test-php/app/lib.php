<?php
// What the site's pages, its cron and its migration command share (the site's "module").
//
// Every visit (a page, or a cron run) is one transaction: it takes the next id from the
// `sequences` row (as Drupal 7's db_next_id did), inserts the visit with the request's id and
// commits. The sequence row stays locked until the commit, so visits commit in the order of their
// ids: any consistent copy of the database holds exactly the visits 1..N for some N.

require __DIR__ . '/settings.php';

function site_db(): mysqli {
  global $databases;
  $c = $databases['default']['default'];
  foreach (['host', 'database', 'username', 'password'] as $k)
    if ($c[$k] === '') throw new RuntimeException("settings.php: the database $k is not set");
  mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
  $db = mysqli_init();
  $db->options(MYSQLI_OPT_CONNECT_TIMEOUT, 3);
  $db->options(MYSQLI_OPT_READ_TIMEOUT, 15);
  $db->real_connect($c['host'], $c['username'], $c['password'], $c['database'], $c['port']);
  $db->set_charset('utf8mb4');
  return $db;
}

/**
 * The base schema, made if absent (what a site install does once); safe to run any number of times,
 * at once, and on a schema that later migrations changed (so every INSERT names its columns).
 */
function site_install(mysqli $db): void {
  foreach ([
    'CREATE TABLE IF NOT EXISTS sequences (name VARCHAR(32) PRIMARY KEY, value BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB',
    "INSERT IGNORE INTO sequences (name, value) VALUES ('visits', 0)",
    'CREATE TABLE IF NOT EXISTS visits (id BIGINT UNSIGNED PRIMARY KEY, request_id VARCHAR(64) NOT NULL,' .
      ' path VARCHAR(255) NOT NULL, host VARCHAR(64) NOT NULL, release_name VARCHAR(64) NOT NULL,' .
      ' created DATETIME(6) NOT NULL, KEY (request_id)) ENGINE=InnoDB',
    'CREATE TABLE IF NOT EXISTS content (id INT UNSIGNED PRIMARY KEY, title VARCHAR(255) NOT NULL, body TEXT NOT NULL) ENGINE=InnoDB',
    "INSERT IGNORE INTO content (id, title, body) VALUES (1, 'Welcome', 'A site on the test bed.'), (2, 'About', 'Apache, PHP and MariaDB.')",
    'CREATE TABLE IF NOT EXISTS uploads (name VARCHAR(255) PRIMARY KEY, bytes INT UNSIGNED NOT NULL,' .
      ' sha256 CHAR(64) NOT NULL, created DATETIME(6) NOT NULL) ENGINE=InnoDB',
    'CREATE TABLE IF NOT EXISTS schema_migrations (version VARCHAR(32) PRIMARY KEY, name VARCHAR(255) NOT NULL,' .
      ' applied DATETIME(6) NOT NULL) ENGINE=InnoDB',
  ] as $sql)
    $db->query($sql);
}

/**
 * Record a visit; its id. One round trip: the sequence row is locked only while the database runs
 * the transaction, never while this process waits for a CPU between two statements (under load,
 * one descheduled lock holder would stall every page of the site).
 */
function record_visit(mysqli $db, string $requestId, string $path): int {
  $q = fn (string $s): string => "'" . $db->real_escape_string($s) . "'";
  $values = implode(', ', [$q($requestId), $q($path), $q(gethostname()), $q($GLOBALS['settings']['release'])]);
  try {
    $db->multi_query(
      'START TRANSACTION;' .
      " UPDATE sequences SET value = LAST_INSERT_ID(value + 1) WHERE name = 'visits';" .
      " INSERT INTO visits (id, request_id, path, host, release_name, created) VALUES (LAST_INSERT_ID(), $values, NOW(6));" .
      ' COMMIT;' .
      ' SELECT LAST_INSERT_ID()'
    );
    $id = null;
    do {
      if ($r = $db->store_result()) {
        $id = (int) $r->fetch_row()[0];
        $r->free();
      }
    } while ($db->more_results() && $db->next_result());
  } catch (Throwable $e) {
    $db->rollback();
    throw $e;
  }
  if (!$id) throw new RuntimeException('the visit got no id');
  return $id;
}

/** The newest applied migration, or 'none'. */
function schema_version(mysqli $db): string {
  return $db->query('SELECT COALESCE(MAX(version), \'none\') FROM schema_migrations')->fetch_row()[0];
}
