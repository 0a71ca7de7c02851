// The import boundaries of src/, so imports point inward: http -> domain -> db, jobs and
// runtime call the domain, runtime and main.ts compose everything; batching is a leaf that db
// and jobs both use; bench/ and test/ may import src/, never the reverse. npm test runs it;
// .dependency-cruiser-known-violations.json lists the violations still to fix
// (depcruise-baseline), so only a new one fails.

/** A rule that fails the check; `comment` is the reason, printed with each violation. */
function forbid(name, comment, from, to) {
  return { name, severity: 'error', comment, from, to };
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    forbid('no-circular', 'A cycle ties layers together so neither can be read, tested or changed alone.',
      { path: '^src/' },
      { circular: true }),
    forbid('not-to-unresolvable', 'An import that does not resolve fails at run time; depcruise sees it before node does.',
      {},
      { couldNotResolve: true }),
    forbid('not-to-dev-dep', 'The service runs from a production install, where devDependencies are absent.',
      { path: '^src/' },
      { dependencyTypes: ['npm-dev'] }),
    forbid('src-not-to-bench-or-test', 'The product does not depend on its bench or its tests; they depend on it.',
      { path: '^src/' },
      { path: '^(bench|test)/' }),
    forbid('runtime-is-the-composition-root', 'Only main.ts and runtime itself start processes and threads; everything else is started by them.',
      { path: '^src/', pathNot: ['^src/runtime/', '^src/main\\.ts$'] },
      { path: '^src/(runtime/|main\\.ts$)' }),
    forbid('db-imports-no-upper-layer', 'db is the innermost layer: row types and queries, knowing nothing of rules, jobs, transports or token handling.',
      { path: '^src/db/' },
      { path: '^src/(domain|jobs|runtime|http|observability|security)/' }),
    forbid('domain-imports-db-and-security-only', 'The rules take what they touch as parameters, so they reach only db and security, never a transport or a job.',
      { path: '^src/domain/' },
      { path: '^src/(http|jobs|runtime|observability)/' }),
    forbid('http-reaches-db-through-domain', 'Routes call domain functions; only the Sql handle type and the Postgres error table pass through to http.',
      { path: '^src/http/', pathNot: '^src/http/schemas/' },
      { path: '^src/db/', pathNot: '^src/db/(database|postgres-errors)\\.ts$' }),
    forbid('http-schemas-read-row-types-only', 'A schema file turns the rows a domain function returns into its answer (toCourse): it reads their types, never a query.',
      { path: '^src/http/schemas/' },
      { path: '^src/db/', pathNot: '^src/db/(database|postgres-errors)\\.ts$', dependencyTypesNot: ['type-only'] }),
    forbid('jobs-reach-db-through-domain', 'Jobs run the rules of the domain (what is due, what is recorded); only the Sql handle type and the Postgres error table pass through to jobs.',
      { path: '^src/jobs/' },
      { path: '^src/db/', pathNot: '^src/db/(database|postgres-errors)\\.ts$' }),
    forbid('http-not-to-jobs', 'http answers requests through the domain; jobs are wired in by runtime, not imported by routes.',
      { path: '^src/http/' },
      { path: '^src/jobs/' }),
    forbid('jobs-not-to-http', 'Jobs call the domain; an HTTP module in a job would tie background work to the transport.',
      { path: '^src/jobs/' },
      { path: '^src/http/' }),
    forbid('observability-and-security-are-leaves', 'Metrics, logs and security rules are used by every layer, so they may import config.ts and nothing above them.',
      { path: '^src/(observability|security)/' },
      { path: '^src/(db|domain|jobs|runtime|http)/' }),
    forbid('batching-is-a-leaf', 'Batching calls is shared by db (the group commit) and jobs (batched statements), so it imports nothing of src/: it batches items without knowing what they are.',
      { path: '^src/batching/' },
      { path: '^src/', pathNot: '^src/batching/' }),
    forbid('settings-handed-down', 'Only the composition root (main.ts, runtime) and the logger read the Config; db, domain, jobs and http get the settings they use as parameters.',
      { path: '^src/(db|domain|jobs|http)/' },
      { path: '^src/config\\.ts$' }),
    forbid('config-imports-only-parsers', 'config.ts is read by every process first; it may import only what parses a setting (security/).',
      { path: '^src/config\\.ts$' },
      { path: '^src/', pathNot: '^src/security/' }),
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6'],
    // Resolve packages as Node does: package.json "exports" first, then its main fields.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
