import assert from 'node:assert/strict';

export interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** Reads a text/event-stream answer to its end (or until `stopAfter` says so), parsing events as EventSource does. */
export async function readEvents(res: Response, stopAfter?: (e: SseEvent) => boolean): Promise<SseEvent[]> {
  assert.ok(res.body);
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = pending.indexOf('\n\n')) !== -1) {
      const block = pending.slice(0, cut);
      pending = pending.slice(cut + 2);
      const event: SseEvent = { event: 'message', data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(value);
        else if (field === 'event') event.event = value;
        else if (field === 'id') event.id = value;
      }
      if (!data.length) continue; // retry: and comments carry no data
      event.data = data.join('\n');
      events.push(event);
      if (stopAfter?.(event)) return events;
    }
  }
  return events;
}
