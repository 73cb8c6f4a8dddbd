import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { RuntimeInfo } from "@isol8/kit/results";
import { Api, ApiError, describeError, keyStore } from "./api.js";
import { Notebook } from "./notebook.js";
import { OperatorView } from "./operator.js";
import { Playground } from "./playground.js";

type Tab = "playground" | "notebook" | "operator";

interface SignedIn {
  api: Api;
  runtimes: RuntimeInfo[];
}

/** Checks a key the way every call will use it: GET /runtimes with it. */
async function signIn(key: string): Promise<SignedIn> {
  const api = new Api(key);
  const { runtimes } = await api.runtimes();
  return { api, runtimes };
}

function SignIn({ onSignedIn, error }: { onSignedIn: (key: string) => void; error: string }) {
  const [key, setKey] = useState("");
  return (
    <form
      class="sign-in"
      data-testid="sign-in"
      onSubmit={(e) => {
        e.preventDefault();
        onSignedIn(key);
      }}
    >
      <h2>Sign in</h2>
      <p>The API key stays in this tab (session storage) and is sent only as an Authorization header to this server.</p>
      <input
        data-testid="api-key"
        type="password"
        autocomplete="off"
        placeholder="API key"
        value={key}
        onInput={(e) => setKey((e.target as HTMLInputElement).value)}
      />
      <button data-testid="sign-in-button" type="submit" disabled={!key}>
        Sign in
      </button>
      {error && (
        <p class="error" role="alert" data-testid="sign-in-error">
          {error}
        </p>
      )}
    </form>
  );
}

function App() {
  const [session, setSession] = useState<SignedIn>();
  const [error, setError] = useState("");
  const [tab, setTab] = useState<Tab>("playground");

  const attempt = async (key: string) => {
    try {
      const signed = await signIn(key);
      keyStore.set(key);
      setSession(signed);
      setError("");
    } catch (e) {
      keyStore.clear();
      const refused = e instanceof ApiError && (e.status === 401 || e.status === 403);
      setError(refused ? `The server refused this API key (${describeError(e)})` : `Could not sign in: ${describeError(e)}`);
    }
  };

  useEffect(() => {
    const saved = keyStore.get();
    if (saved) void attempt(saved);
  }, []);

  if (!session) return <SignIn onSignedIn={(key) => void attempt(key)} error={error} />;
  // The operator tab is always there: the server decides (GET /admin/overview answers admin tenants only).
  const tabs: Tab[] = ["playground", "notebook", "operator"];
  return (
    <>
      <nav>
        {tabs.map((t) => (
          <button key={t} data-testid={`tab-${t}`} class={t === tab ? "active" : ""} onClick={() => setTab(t)}>
            {t[0]!.toUpperCase() + t.slice(1)}
          </button>
        ))}
        <button
          class="sign-out"
          data-testid="sign-out"
          onClick={() => {
            keyStore.clear();
            setSession(undefined);
          }}
        >
          Sign out
        </button>
      </nav>
      <main>
        {/* Both views stay mounted: a run or a notebook keeps its state across tabs. */}
        <div hidden={tab !== "playground"}>
          <Playground api={session.api} runtimes={session.runtimes} />
        </div>
        <div hidden={tab !== "notebook"}>
          <Notebook api={session.api} runtimes={session.runtimes} />
        </div>
        {tab === "operator" && <OperatorView api={session.api} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
