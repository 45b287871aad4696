// One browser tab of the cross-tab test: tabs of one origin share an IndexedDB database,
// each with its own connection, as an agent open in several tabs would. What the tab does
// comes from its query string; its outcome is left in `window.snapgitReport`.
//
//   ?db=<name>&role=create                       create repo `r`
//   ?db=<name>&role=writer&client=<c>&turns=<n>  commit `n` times to agent-<c>.md, once
//                                                `window.snapgitGo()` is called (the tab
//                                                sets `window.snapgitReady` when it waits)
//   ?db=<name>&role=check                        read back every file and the history
import { Store } from "snapgit";
import { IndexedDbAdapter } from "snapgit/adapters/indexeddb";

const query = new URLSearchParams(location.search);
const author = { name: "Agent", email: "agent@example.com", date: new Date("2024-05-01T12:00:00Z") };

async function act() {
  const adapter = await IndexedDbAdapter.open(query.get("db"));
  const store = await Store.open({ adapter });
  const repo = store.repo("r");
  switch (query.get("role")) {
    case "create":
      return { commit: (await store.createRepo("r", { author, files: { "shared.md": "s\n" } })).commit };
    case "writer": {
      const client = Number(query.get("client"));
      await repo.head(); // loaded and warm: the writers start together
      await new Promise((go) => {
        window.snapgitGo = go;
        window.snapgitReady = true;
      });
      const commits = [];
      for (let i = 0; i < Number(query.get("turns")); i++) {
        const files = { [`agent-${client}.md`]: `${i}\n` };
        const out = await repo.commit({ author, message: `c${client} t${i}`, files, maxAttempts: 100 });
        commits.push({ commit: out.commit, attempts: out.attempts });
      }
      return { commits };
    }
    case "check": {
      const files = (await repo.readFiles()).map((f) => [f.path, new TextDecoder().decode(f.data)]);
      const log = (await repo.log({ limit: 1000 })).commits.map((c) => c.id);
      return { files, log };
    }
    default:
      throw new Error(`unknown role ${query.get("role")}`);
  }
}

try {
  window.snapgitReport = await act();
} catch (error) {
  window.snapgitReport = { error: `${error.name}: ${error.message}`, code: error.code };
}
