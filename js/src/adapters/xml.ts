/**
 * Just enough XML for S3 responses (flat elements with text, no same-name nesting) and
 * request bodies. Element text is decoded fully: the five named entities, numeric
 * references and CDATA sections, since keys may contain any of `& < > " '`.
 */

/** The inner text of every `<tag>` element in `xml`, in document order, still encoded. */
export function elements(xml: string, tag: string): string[] {
  const out: string[] = [];
  const pattern = new RegExp(`<${tag}(?:\\s[^>]*)?(?:/>|>([\\s\\S]*?)</${tag}\\s*>)`, "g");
  for (const match of xml.matchAll(pattern)) out.push(match[1] ?? "");
  return out;
}

/** The decoded text of the first `<tag>` element in `xml`, or `undefined`. */
export function text(xml: string, tag: string): string | undefined {
  const found = elements(xml, tag)[0];
  return found === undefined ? undefined : decode(found);
}

const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** Decodes entities and CDATA sections in element text. */
export function decode(encoded: string): string {
  let out = "";
  let rest = encoded;
  while (rest.length > 0) {
    const cdata = rest.indexOf("<![CDATA[");
    const chunk = cdata < 0 ? rest : rest.slice(0, cdata);
    out += chunk.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, name: string) => {
      if (name.startsWith("#x")) return String.fromCodePoint(parseInt(name.slice(2), 16));
      if (name.startsWith("#")) return String.fromCodePoint(parseInt(name.slice(1), 10));
      return NAMED[name] ?? whole;
    });
    if (cdata < 0) break;
    const end = rest.indexOf("]]>", cdata);
    if (end < 0) {
      out += rest.slice(cdata + 9);
      break;
    }
    out += rest.slice(cdata + 9, end);
    rest = rest.slice(end + 3);
  }
  return out;
}

/** Escapes text for an element's content. */
export function escape(raw: string): string {
  return raw.replace(/[&<>"']/g, (c) => `&${c === "&" ? "amp" : c === "<" ? "lt" : c === ">" ? "gt" : c === '"' ? "quot" : "apos"};`);
}
