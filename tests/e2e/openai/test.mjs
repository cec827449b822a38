// kiln serve through the official openai client, unchanged: chat, streaming,
// completions, models and an error. KILN_URL, KILN_API_KEY and KILN_MODEL
// come from tests/e2e/test_server.cpp, which starts the server.
import assert from "node:assert/strict";
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.KILN_URL, apiKey: process.env.KILN_API_KEY, maxRetries: 0 });
const model = process.env.KILN_MODEL;

const models = await client.models.list();
assert.ok(models.data.some((m) => m.id === model), `models list lacks ${model}`);

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me about the sea." }],
  max_tokens: 12,
  temperature: 0,
});
assert.equal(chat.object, "chat.completion");
assert.equal(chat.choices[0].message.role, "assistant");
assert.ok(chat.choices[0].message.content.length > 0);
assert.ok(chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens);

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me about the sea." }],
  max_tokens: 12,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let finish = null;
let usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta?.content ?? "";
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(text, chat.choices[0].message.content, "streamed text differs from the non-streamed answer");
assert.ok(finish === "stop" || finish === "length");
assert.ok(usage && usage.completion_tokens > 0);

const completion = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
assert.equal(completion.object, "text_completion");
assert.ok(completion.choices[0].text.length > 0);

await assert.rejects(
  client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], temperature: -1 }),
  (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && err.param === "temperature",
);
await assert.rejects(
  client.completions.create({ model: "no-such-model", prompt: "hi" }),
  (err) => err instanceof OpenAI.NotFoundError && err.status === 404,
);

console.log("openai client: all checks passed");
