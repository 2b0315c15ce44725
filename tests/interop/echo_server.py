"""An echo server on Python's websockets, for tests/interop/run.sh.

Listens on 127.0.0.1 on a free port and prints the port as its first line of standard output.
permessage-deflate is on (websockets' default). Paths:

    /          every text or binary message is sent back as the same type
    /info      first sends one text message: the Sec-WebSocket-Extensions it answered ("none"
               without one), then echoes
    /refuse    refuses the upgrade with 403
    /close/N   closes at once with code N and the reason "bye from python"
"""

import asyncio
import http

from websockets.asyncio.server import serve

# Messages up to 16 MiB are echoed (websockets' default limit is 1 MiB).
MAX_SIZE = 32 * 2**20


async def handler(websocket):
    path = websocket.request.path
    if path.startswith("/close/"):
        await websocket.close(int(path[len("/close/"):]), "bye from python")
        return
    if path == "/info":
        await websocket.send(websocket.response.headers.get("Sec-WebSocket-Extensions", "none"))
    async for message in websocket:
        await websocket.send(message)


def process_request(connection, request):
    if request.path == "/refuse":
        return connection.respond(http.HTTPStatus.FORBIDDEN, "refused\n")
    return None


async def main():
    async with serve(
        handler, "127.0.0.1", 0, process_request=process_request, max_size=MAX_SIZE
    ) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
