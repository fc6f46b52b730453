"""N dashboards: WebSocket clients (of the protocol the URL asks for) that read every message until killed."""

import asyncio
import sys

import tornado.websocket


async def watch(url: str, counts: list, index: int) -> None:
    conn = await tornado.websocket.websocket_connect(url)
    while await conn.read_message() is not None:
        counts[index] += 1


async def main(url: str, how_many: int) -> None:
    counts = [0] * how_many
    await asyncio.gather(*(watch(url, counts, i) for i in range(how_many)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
