<?php
// The site's front controller (Apache sends every path here, as Drupal's .htaccess does):
//   /health       the database answers and holds the site's schema: "ok"
//   /slow         a page that takes 2 s (then as any page)
//   POST /upload?name=N   the body lands in the shared files (uploads/N) and in the uploads table
//   anything else a page: reads the content, records the visit (?rid= names the request), JSON
require __DIR__ . '/lib.php';

header('Cache-Control: no-store');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?: '/';
try {
  $db = site_db();
  if ($path === '/health') {
    $db->query('SELECT value FROM sequences WHERE name = \'visits\'')->fetch_row();
    header('Content-Type: text/plain');
    echo "ok\n";
    exit;
  }
  if ($path === '/upload') {
    upload($db);
    exit;
  }
  if ($path === '/slow') sleep(2);
  $rid = substr((string) ($_GET['rid'] ?? ''), 0, 64);
  $id = record_visit($db, $rid, substr($path, 0, 255));
  $content = $db->query('SELECT title FROM content ORDER BY id')->fetch_all();
  header('Content-Type: application/json');
  echo json_encode([
    'site' => $settings['site_id'],
    'release' => $settings['release'],
    'host' => gethostname(),
    'visit' => $id,
    'rid' => $rid,
    'schema' => schema_version($db),
    'titles' => array_column($content, 0),
  ]), "\n";
} catch (Throwable $e) {
  http_response_code(500);
  header('Content-Type: text/plain');
  echo 'error: ', $e->getMessage(), "\n";
  error_log('site: ' . $e->getMessage());
}

function upload(mysqli $db): void {
  global $settings;
  $name = (string) ($_GET['name'] ?? '');
  if ($_SERVER['REQUEST_METHOD'] !== 'POST' || !preg_match('/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/', $name)) {
    http_response_code(400);
    echo "POST /upload?name=NAME (letters, digits, . _ -)\n";
    return;
  }
  $body = file_get_contents('php://input');
  $dir = $settings['files'] . '/uploads';
  if (!is_dir($dir)) @mkdir($dir, 0775, true);
  // written aside and renamed: a reader of the shared files never sees half an upload
  $tmp = "$dir/.$name." . bin2hex(random_bytes(4));
  if (file_put_contents($tmp, $body) !== strlen($body) || !rename($tmp, "$dir/$name"))
    throw new RuntimeException("cannot write uploads/$name");
  $st = $db->prepare('REPLACE INTO uploads (name, bytes, sha256, created) VALUES (?, ?, ?, NOW(6))');
  $bytes = strlen($body);
  $sum = hash('sha256', $body);
  $st->bind_param('sis', $name, $bytes, $sum);
  $st->execute();
  header('Content-Type: application/json');
  echo json_encode(['upload' => $name, 'bytes' => $bytes, 'sha256' => $sum]), "\n";
}
