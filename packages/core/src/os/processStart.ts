import { readFileSync } from 'node:fs';

/**
 * A process's start time in clock ticks since boot (Linux /proc/<pid>/stat field 22, counted
 * after the parenthesised command name, which may hold spaces), so a lock or spool owner whose
 * pid was reused by another process reads as gone. undefined when no such process exists.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
