// A small S3-compatible HTTP server on 127.0.0.1 for fault tests of the S3 adapter: it can
// ignore conditional headers (as some servers do), lack conditional deletes or DeleteObjects,
// and answer chosen requests with chosen statuses, before or after applying them.
// Path-style only; signatures are not checked (the ministack run checks them).
import { createHash } from "node:crypto";
import { createServer } from "node:http";

const xmlEscape = (s) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]);

function errorXml(code, message) {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
}

/**
 * options:
 *   conditional        honour If-Match / If-None-Match on PUT (default true)
 *   conditionalDelete  honour If-Match on DELETE (default true)
 *   deleteObjects      support POST ?delete (default true; it requires Content-MD5)
 *   intercept(request) called for every request with { method, key, headers, query };
 *                      may return { status, code, apply } to answer with `status` instead,
 *                      after applying the request first when `apply` is true
 */
export async function startFakeS3(options = {}) {
  const conditional = options.conditional ?? true;
  const conditionalDelete = options.conditionalDelete ?? true;
  const deleteObjects = options.deleteObjects ?? true;
  const objects = new Map();
  const requests = [];

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, "http://localhost");
    const [, bucket, ...rest] = url.pathname.split("/");
    const key = rest.map(decodeURIComponent).join("/");
    const info = { method: req.method, bucket, key, headers: req.headers, query: url.searchParams };
    requests.push(info);
    const send = (status, text = "", headers = {}) => {
      res.writeHead(status, { "content-type": "application/xml", ...headers });
      res.end(text);
    };
    const fault = options.intercept?.(info);
    if (fault && !fault.apply) return send(fault.status, errorXml(fault.code ?? "InternalError", "injected"));
    const [status, text, headers] = handle(info, body);
    if (fault) return send(fault.status, errorXml(fault.code ?? "InternalError", "injected (applied)"));
    send(status, text, headers);
  });

  function handle({ method, key, headers, query }, body) {
    const current = objects.get(key);
    if (method === "GET" && key === "") {
      const prefix = query.get("prefix") ?? "";
      const max = Number(query.get("max-keys") ?? 1000);
      const after = query.get("continuation-token") ?? "";
      const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
      const page = keys.slice(0, max);
      const truncated = keys.length > max;
      const contents = page
        .map((k) => {
          const o = objects.get(k);
          return `<Contents><Key>${xmlEscape(k)}</Key><LastModified>${o.modified.toISOString()}</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${o.bytes.length}</Size></Contents>`;
        })
        .join("");
      const next = truncated ? `<NextContinuationToken>${xmlEscape(page[page.length - 1])}</NextContinuationToken>` : "";
      return [200, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`];
    }
    if (method === "POST" && query.has("delete")) {
      if (!deleteObjects) return [501, errorXml("NotImplemented", "no DeleteObjects")];
      const md5 = createHash("md5").update(body).digest("base64");
      if (headers["content-md5"] !== md5) return [400, errorXml("InvalidDigest", "Content-MD5 missing or wrong")];
      const keys = [...body.toString("utf8").matchAll(/<Key>(.*?)<\/Key>/g)].map((m) =>
        m[1].replace(/&(amp|lt|gt|quot|apos);/g, (_, e) => ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" })[e]),
      );
      for (const k of keys) objects.delete(k);
      return [200, `<?xml version="1.0" encoding="UTF-8"?><DeleteResult></DeleteResult>`];
    }
    if (method === "GET") {
      if (!current) return [404, errorXml("NoSuchKey", key)];
      return [200, current.bytes, { etag: current.etag, "last-modified": current.modified.toUTCString() }];
    }
    if (method === "PUT") {
      if (headers["x-amz-copy-source"]) {
        if (!current) return [404, errorXml("NoSuchKey", key)];
        current.modified = new Date();
        return [200, `<CopyObjectResult><ETag>${xmlEscape(current.etag)}</ETag></CopyObjectResult>`];
      }
      if (conditional) {
        if (headers["if-none-match"] === "*" && current) return [412, errorXml("PreconditionFailed", key)];
        const ifMatch = headers["if-match"];
        if (ifMatch !== undefined) {
          if (!current) return [404, errorXml("NoSuchKey", key)];
          if (ifMatch !== "*" && ifMatch !== current.etag) return [412, errorXml("PreconditionFailed", key)];
        }
      }
      const etag = `"${createHash("md5").update(body).digest("hex")}"`;
      objects.set(key, { bytes: body, etag, modified: new Date() });
      return [200, "", { etag }];
    }
    if (method === "DELETE") {
      const ifMatch = headers["if-match"];
      if (conditionalDelete && ifMatch !== undefined) {
        if (!current) return [404, errorXml("NoSuchKey", key)];
        if (ifMatch !== "*" && ifMatch !== current.etag) return [412, errorXml("PreconditionFailed", key)];
      }
      objects.delete(key);
      return [204, ""];
    }
    return [400, errorXml("InvalidRequest", `${method} not supported`)];
  }

  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    objects,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}
