<?php
// The database connection from the environment the profile renders, as a Drupal site's
// settings.php reads it (DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD).
$databases['default']['default'] = [
  'host' => getenv('DB_HOST') ?: '',
  'port' => (int) (getenv('DB_PORT') ?: 3306),
  'database' => getenv('DB_NAME') ?: '',
  'username' => getenv('DB_USER') ?: '',
  'password' => getenv('DB_PASSWORD') ?: '',
];
$settings['site_id'] = getenv('SITE_ID') ?: '';
$settings['release'] = getenv('RELEASE') ?: '';
$settings['files'] = '/var/www/files';
