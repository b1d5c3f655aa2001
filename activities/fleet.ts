import fs from 'node:fs';
import YAML from 'yaml';
import { parseInventory, type Host } from '../schema/inventory';
import { DockerEngines } from './docker/engine';
import { SshPool, type SshPoolOptions } from './ssh/pool';

/** Everything the activities reach the hosts through: the inventory, the SSH pool, Docker clients. */
export interface Fleet {
  hosts: Host[];
  pool: SshPool;
  docker: DockerEngines;
  close(): Promise<void>;
}

export interface FleetConfig {
  /** Inventory file, JSON or YAML. */
  inventoryPath: string;
  /** The orchestrator's private key file; else `agent`. Keys come from configuration, never from workflow input. */
  privateKeyPath?: string;
  /** ssh-agent socket. */
  agent?: string;
  pool?: Omit<SshPoolOptions, 'privateKey' | 'agent'>;
}

export function loadInventory(file: string): Host[] {
  const text = fs.readFileSync(file, 'utf8');
  const data: unknown = /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
  return parseInventory(data);
}

export function openFleet(config: FleetConfig): Fleet {
  const hosts = loadInventory(config.inventoryPath);
  const pool = new SshPool(hosts, {
    ...config.pool,
    privateKey: config.privateKeyPath ? fs.readFileSync(config.privateKeyPath) : undefined,
    agent: config.agent,
  });
  return { hosts, pool, docker: new DockerEngines(pool), close: () => pool.close() };
}
