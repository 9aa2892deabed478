/** openpgp is large: it is loaded only when a data key is wrapped or unwrapped. */
let loaded: Promise<typeof import('openpgp')> | undefined;

export function loadOpenpgp(): Promise<typeof import('openpgp')> {
  loaded ??= import('openpgp');
  return loaded;
}
