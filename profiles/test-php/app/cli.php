<?php
// The site's command line (what drush is to Drupal), same code and settings as the pages:
//   php cli.php install   the base schema, if absent (the app container runs it before Apache)
//   php cli.php migrate   apply the release's migrations (/srv/release/migrations/NNNN_name.sql) not
//                         yet applied, in order, each recorded in schema_migrations (the postDeploy
//                         hook, like drush updatedb). A release holding .fail-migration (its text:
//                         a version) fails on purpose after running that version's statements:
//                         a migration that dies half-way, its schema change already made.
//   php cli.php cron      one cron run: a visit 'cron' and the heartbeat file in the shared files
//   php cli.php probe     exit 0 when Apache serves /health (the container's healthcheck)
require __DIR__ . '/lib.php';

const RELEASE_DIR = '/srv/release';

$cmd = $argv[1] ?? '';
try {
  switch ($cmd) {
    case 'install':
      site_install(site_db());
      echo "schema in place\n";
      break;
    case 'migrate':
      exit(migrate(site_db()));
    case 'cron':
      $db = site_db();
      $id = record_visit($db, 'cron-' . gmdate('Y-m-d\TH:i:s\Z'), 'cron');
      file_put_contents($settings['files'] . '/.cron-heartbeat', gmdate('c') . " visit $id\n");
      break;
    case 'probe':
      $ctx = stream_context_create(['http' => ['timeout' => 2]]);
      exit(@file_get_contents('http://127.0.0.1/health', false, $ctx) === "ok\n" ? 0 : 1);
    default:
      fwrite(STDERR, "usage: php cli.php install|migrate|cron|probe\n");
      exit(2);
  }
} catch (Throwable $e) {
  fwrite(STDERR, "$cmd: " . $e->getMessage() . "\n");
  exit(1);
}

function migrate(mysqli $db): int {
  $files = glob(RELEASE_DIR . '/migrations/*.sql') ?: [];
  sort($files, SORT_STRING);
  $applied = array_column($db->query('SELECT version FROM schema_migrations')->fetch_all(), 0);
  $failAt = is_file(RELEASE_DIR . '/.fail-migration') ? trim(file_get_contents(RELEASE_DIR . '/.fail-migration')) : null;
  $ran = 0;
  foreach ($files as $file) {
    $name = basename($file, '.sql');
    if (!preg_match('/^(\d+)_[a-z0-9_]+$/', $name, $m)) {
      fwrite(STDERR, "migrate: $name.sql is not NNNN_name.sql\n");
      return 1;
    }
    $version = $m[1];
    if (in_array($version, $applied, true)) continue;
    // statements end with ';' at the end of a line; lines starting with -- are comments
    $text = preg_replace('/^\s*--.*$/m', '', file_get_contents($file));
    foreach (array_filter(array_map('trim', explode(";\n", $text . "\n"))) as $sql)
      $db->query(rtrim($sql, ';'));
    if ($failAt === $version) {
      fwrite(STDERR, "migrate: $name fails on purpose (.fail-migration in the release), its statements already run\n");
      return 1;
    }
    $st = $db->prepare('INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, NOW(6))');
    $st->bind_param('ss', $version, $name);
    $st->execute();
    echo "applied $name\n";
    $ran++;
  }
  echo $ran ? "$ran migration(s) applied\n" : "no pending migrations\n";
  return 0;
}
