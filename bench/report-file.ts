// Owns where a report goes: <dir>/<scenario>-<YYYYMMDD-HHMMSS>.html, never overwriting one.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

function stamp(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${two(date.getMonth() + 1)}${two(date.getDate())}-${two(date.getHours())}${two(date.getMinutes())}${two(date.getSeconds())}`;
}

export async function writeReport(dir: string, scenario: string, html: string, date = new Date()): Promise<string> {
  await mkdir(dir, { recursive: true });
  const base = `${scenario}-${stamp(date)}`;
  for (let n = 1; n <= 100; n++) {
    const file = path.join(dir, n === 1 ? `${base}.html` : `${base}-${n}.html`);
    try {
      await writeFile(file, html, { flag: 'wx' }); // wx: fails if it exists
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  throw new Error(`100 reports named ${base}*.html already exist in ${dir}`);
}
