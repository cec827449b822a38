// Serving benchmark (not a test): C concurrent streaming clients, each sending
// R completion requests of T tokens (EOS banned, so every answer is T tokens),
// against any OpenAI-compatible /v1/completions (kiln serve or llama-server).
//   node bench.mjs URL CONCURRENCY [REQUESTS_PER_CLIENT=4] [TOKENS=64]
// Prints aggregate generated tokens/s over the wall time and time to first token.
const [url, conc, reqs = "4", toks = "64"] = process.argv.slice(2);
const C = Number(conc), R = Number(reqs), T = Number(toks);
const prompts = ["Once upon a time", "The old man walked", "In the morning the city", "She opened the letter and",
  "The history of the river", "When the train arrived", "A small dog ran", "The teacher said that"];

async function one(prompt) {
  const t0 = performance.now();
  const res = await fetch(url + "/v1/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: T, temperature: 0, stream: true, logit_bias: { "2": -100 }, ignore_eos: true }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttft = null, n = 0, buf = "";
  const dec = new TextDecoder();
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
      const j = JSON.parse(ev.slice(6));
      if (j.choices?.[0]?.text) {
        if (ttft === null) ttft = performance.now() - t0;
        n++;
      }
    }
  }
  return { ttft, n };
}

const t0 = performance.now();
const results = [];
await Promise.all(Array.from({ length: C }, async (_, c) => {
  for (let r = 0; r < R; r++) results.push(await one(prompts[(c + r) % prompts.length] + " " + c));
}));
const wall = (performance.now() - t0) / 1000;
const tokens = results.reduce((a, r) => a + r.n, 0);
const ttfts = results.map((r) => r.ttft).sort((a, b) => a - b);
const p = (q) => ttfts[Math.min(ttfts.length - 1, Math.floor(q * ttfts.length))];
console.log(JSON.stringify({ concurrency: C, requests: results.length, tokens, wall_s: +wall.toFixed(2),
  tokens_per_s: +(tokens / wall).toFixed(1), ttft_ms_p50: +p(0.5).toFixed(1), ttft_ms_p90: +p(0.9).toFixed(1) }));
