// A course's capacity change in the words of its history entry ("capacity 30 → 40; waitlist
// capacity 10 → 5"), or undefined when neither changed.
type Capacities = { capacity: number; waitlistCapacity: number };

export function describeCapacityChange(before: { capacity: number; waitlist_capacity: number }, after: Capacities): string | undefined {
  const parts: string[] = [];
  if (after.capacity !== before.capacity) parts.push(`capacity ${before.capacity} → ${after.capacity}`);
  if (after.waitlistCapacity !== before.waitlist_capacity) parts.push(`waitlist capacity ${before.waitlist_capacity} → ${after.waitlistCapacity}`);
  return parts.length > 0 ? parts.join('; ') : undefined;
}
