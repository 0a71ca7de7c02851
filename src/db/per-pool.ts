// State kept per connection pool, that is per database: a worker has one pool; tests make
// several, each with its own state. Made on first use, dropped with the pool.
export function perPool<P extends object, T>(create: (pool: P) => T): (pool: P) => T {
  const byPool = new WeakMap<P, T>();
  return (pool) => {
    let value = byPool.get(pool);
    if (value === undefined) {
      value = create(pool);
      byPool.set(pool, value);
    }
    return value;
  };
}
