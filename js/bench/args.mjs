// The command line of the bench scripts: numeric `--name value` options and the words
// that are neither an option nor its value.
const args = process.argv.slice(2);

/** The number after `name`, or `fallback` if the option is absent. */
export function option(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
}

/** The arguments that are not options (package directories, for the A/B scripts). */
export const positional = args.filter((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--"));

/** Whether the flag `name` was given. */
export const flag = (name) => args.includes(name);
