import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { announcedMaxBandwidth } from '../../../src/scheduler/system-stats.js';

/** A fake /sys with one interface: its speed (Mb/s), and a `device` entry when it is a physical NIC. */
function fakeSys(iface: string, speed: string, physical: boolean): string {
  const sys = mkdtempSync(join(tmpdir(), 'sysfs-'));
  const dir = join(sys, 'class', 'net', iface);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'speed'), `${speed}\n`);
  if (physical) mkdirSync(join(dir, 'device'));
  return sys;
}

const GB = 1_000_000_000;

test('a physical NIC announces min(speed, upload limit) in bits/s, as upstream', (t) => {
  const sys = fakeSys('eth0', '1000', true);
  t.after(() => rmSync(sys, { recursive: true, force: true }));
  assert.equal(announcedMaxBandwidth(sys, 'eth0', 50 * GB), 1000 * 1_000_000);
  assert.equal(announcedMaxBandwidth(sys, 'eth0', 10_000_000), 80_000_000, 'the limit when it is lower');
});

test('a virtual NIC (veth: no device link) announces the upload limit, not its made-up speed', (t) => {
  const sys = fakeSys('veth0', '10000', false);
  t.after(() => rmSync(sys, { recursive: true, force: true }));
  assert.equal(announcedMaxBandwidth(sys, 'veth0', 12_500_000), 100_000_000);
});

test('an unknown speed or interface announces the upload limit', (t) => {
  const sys = fakeSys('eth0', '-1', true);
  t.after(() => rmSync(sys, { recursive: true, force: true }));
  assert.equal(announcedMaxBandwidth(sys, 'eth0', 1000), 8000);
  assert.equal(announcedMaxBandwidth(sys, undefined, 1000), 8000);
});
