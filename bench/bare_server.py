"""The baseline: a bare Tornado handler that parses the same JSON body and answers, nothing else."""

import asyncio
import json
import sys

import tornado.web


class BareHandler(tornado.web.RequestHandler):
    def post(self) -> None:
        json.loads(self.request.body)
        self.write({"ok": True})


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/progress", BareHandler)])
    app.listen(port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
