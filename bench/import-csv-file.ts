// Owns the `import` scenario's CSV file: R data rows written to disk as a stream (a few thousand rows
// in memory at a time), from a seed. Unique emails, names as people have them (some quoted, with
// commas, quotes or accents), ~20 courses of uneven size, some rows repeating an earlier student
// (in other case and spacing: "existing"), a few invalid ones ("rejected").
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { seededRandom } from './rush-workload.ts';

export type ImportFileOptions = {
  file: string;
  rows: number;
  courses: number;
  /** Rows repeating an earlier student of the file, percent of all rows. */
  duplicatePercent: number;
  seed: number;
};

export type ImportFile = {
  file: string;
  bytes: number;
  /** Data rows (the header not counted) = unique + duplicates + invalid. */
  rows: number;
  unique: number;
  duplicates: number;
  invalid: number;
  quoted: number;
  /** Course id -> its unique students: each is created with room for all of them. */
  demand: Map<string, number>;
};

const FIRST = ['Ada', 'Alan', 'Grace', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken', 'Frances', 'Dennis', 'Radia', 'John',
  'Sophie', 'Tim', 'Hedy', 'Linus', 'Karen', 'Niklaus', 'Shafi', 'Leslie', 'Annie', 'Guido', 'Mary', 'Bjarne', 'Lynn', 'Yukihiro'];
const LAST = ['Lovelace', 'Turing', 'Hopper', 'Dijkstra', 'Liskov', 'Knuth', 'Hamilton', 'Thompson', 'Allen', 'Ritchie', 'Perlman',
  'McCarthy', 'Wilson', 'Berners-Lee', 'Lamarr', 'Torvalds', 'Spärck Jones', 'Wirth', 'Goldwasser', 'Lamport', 'Easley', 'van Rossum',
  'Keller', 'Stroustrup', 'Conway', 'Matsumoto', 'Núñez', "O'Brien"];

/** One invalid row in this many (an email that is not one): the import reports it and goes on. */
const INVALID_EVERY = 2_000;

export function courseIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `imp-${String(i + 1).padStart(2, '0')}`);
}

/** Row n of the unique students, the same every time it is asked for (duplicates repeat it). */
function student(n: number, seed: number, courses: readonly string[], weights: readonly number[]): { name: string; email: string; course: string; quoted: boolean } {
  const random = seededRandom((seed * 0x9e3779b1 + n * 0x85ebca6b) >>> 0);
  const first = FIRST[Math.floor(random() * FIRST.length)]!;
  const last = LAST[Math.floor(random() * LAST.length)]!;
  const style = random();
  let name: string;
  let quoted = false;
  if (style < 0.08) {
    name = `"${last}, ${first}"`; // a comma inside a quoted field
    quoted = true;
  } else if (style < 0.1) {
    name = `"${first} ""${last.slice(0, 3)}"" ${last}"`; // doubled quotes inside a quoted field
    quoted = true;
  } else if (style < 0.12) {
    name = `"${first} ${last}, Jr."`;
    quoted = true;
  } else {
    name = `${first} ${last}`;
  }
  const pick = random();
  let course = courses.length - 1;
  for (let i = 0, sum = 0; i < weights.length; i++) {
    sum += weights[i]!;
    if (pick < sum) {
      course = i;
      break;
    }
  }
  const local = `${first}.${last}`.toLowerCase().normalize('NFD').replace(/[^a-z.]/g, '');
  return { name, email: `${local}.${n + 1}@students.example.org`, course: courses[course]!, quoted };
}

/** Writes the file; resolves with what it holds (counts per course, for capacities and checks). */
export async function writeImportFile(options: ImportFileOptions): Promise<ImportFile> {
  const courses = courseIds(options.courses);
  // Uneven course sizes (1 to 3 shares), fixed by the seed.
  const shape = seededRandom(options.seed);
  const raw = courses.map(() => 1 + 2 * shape());
  const weights = raw.map((w) => w / raw.reduce((a, b) => a + b, 0));
  const choose = seededRandom(options.seed + 1);
  const demand = new Map(courses.map((id) => [id, 0]));
  const out = createWriteStream(options.file, { flags: 'wx' });
  const closed = once(out, 'close');
  closed.catch(() => {}); // awaited below; an early error only must not go unhandled meanwhile
  let unique = 0;
  let duplicates = 0;
  let invalid = 0;
  let quoted = 0;
  let bytes = 0;
  const write = async (text: string) => {
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
  };
  try {
    await write('name,email,course\n');
    let lines: string[] = [];
    for (let i = 0; i < options.rows; i++) {
      if (i % INVALID_EVERY === INVALID_EVERY / 2) {
        invalid += 1;
        lines.push(`Invalid Row ${i + 1},not-an-email-${i + 1},${courses[i % courses.length]}`);
      } else if (unique > 0 && choose() * 100 < options.duplicatePercent) {
        // An earlier student again, as a spreadsheet might have them: other case, spaces around.
        const again = student(Math.floor(choose() * unique), options.seed, courses, weights);
        duplicates += 1;
        lines.push(`${again.name}, ${again.email.toUpperCase()} ,${again.course}`);
      } else {
        const row = student(unique, options.seed, courses, weights);
        unique += 1;
        if (row.quoted) quoted += 1;
        demand.set(row.course, demand.get(row.course)! + 1);
        lines.push(`${row.name},${row.email},${row.course}`);
      }
      if (lines.length === 2_000) {
        await write(`${lines.join('\n')}\n`);
        lines = [];
      }
    }
    if (lines.length > 0) await write(`${lines.join('\n')}\n`);
  } finally {
    out.end();
    await closed;
  }
  return { file: options.file, bytes, rows: options.rows, unique, duplicates, invalid, quoted, demand };
}
