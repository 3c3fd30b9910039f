"""A charger for the test suite: the `ocpp` package's ChargePoint (OCPP 1.6J) over `websockets`.

The test drives it with one JSON object per line on stdin and reads one JSON object per line on
stdout:

  {"op": "call", "action": "BootNotification", "payload": {...}, "skip_validation": false}
      -> {"event": "result", "action": ..., "payload": {...}}
       | {"event": "error", "action": ..., "code": "...", "description": "..."}
  {"op": "answer", "action": "Reset", "payload": {"status": "Rejected"}}
      sets the answer to the central system's next CALLs of that action (a default valid answer
      exists for each) -> {"event": "ok"}
  {"op": "raw", "text": "..."}  sends a text frame as it is (no reply line of its own)
  {"op": "close"}               closes the WebSocket and exits

Whatever the central system sends is reported as {"event": "received", "action": ...,
"payload": {...}}; raw frames the library cannot route as {"event": "frame", "text": ...}; the
end of the connection as {"event": "closed", "code": N, "reason": "..."}; a refused handshake as
{"event": "refused", "status": N, "body": "..."}. With --raw no ChargePoint runs: every frame
received is reported as {"event": "frame", ...}.
"""

import argparse
import asyncio
import base64
import decimal
import json
import sys

import websockets
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

# A valid answer to each CALL the central system may send.
DEFAULT_ANSWERS = {
    "CancelReservation": {"status": "Accepted"},
    "ChangeAvailability": {"status": "Accepted"},
    "ChangeConfiguration": {"status": "Accepted"},
    "ClearCache": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "DataTransfer": {"status": "Accepted", "data": "pong"},
    "GetCompositeSchedule": {
        "status": "Accepted",
        "connectorId": 1,
        "scheduleStart": "2026-12-01T10:00:00Z",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        },
    },
    "GetConfiguration": {
        "configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
            {"key": "MeterValueSampleInterval", "readonly": False, "value": "60"},
        ],
        "unknownKey": [],
    },
    "GetDiagnostics": {"fileName": "diagnostics.zip"},
    "GetLocalListVersion": {"listVersion": 1},
    "RemoteStartTransaction": {"status": "Accepted"},
    "RemoteStopTransaction": {"status": "Accepted"},
    "ReserveNow": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
    "SendLocalList": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "TriggerMessage": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
    "UpdateFirmware": {},
}


def plain(value):
    # The library reads numbers in payloads as Decimal (for the schemas' multipleOf checks).
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def emit(**fields):
    sys.stdout.write(json.dumps(fields, default=plain) + "\n")
    sys.stdout.flush()


class TestCharger(ChargePoint):
    answers = dict(DEFAULT_ANSWERS)

    async def answer(self, action, **payload):
        emit(event="received", action=action, payload=snake_to_camel_case(payload))
        return getattr(call_result, action)(**camel_to_snake_case(self.answers[action]))


def handler(action):
    async def handle(self, **payload):
        return await self.answer(action, **payload)

    # The library finds handlers by the name of the decorated function.
    handle.__name__ = handle.__qualname__ = "on_" + camel_to_snake(action)
    return on(getattr(Action, camel_to_snake(action)))(handle)


def camel_to_snake(name):
    out = ""
    for index, character in enumerate(name):
        if character.isupper() and index:
            out += "_"
        out += character.lower()
    return out


for _action in DEFAULT_ANSWERS:
    setattr(TestCharger, "on_" + camel_to_snake(_action), handler(_action))


async def stdin_lines():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.strip():
            yield json.loads(line)


async def drive(charger, connection):
    async for command in stdin_lines():
        op = command["op"]
        if op == "call":
            action = command["action"]
            request = getattr(call, action)(**camel_to_snake_case(command.get("payload", {})))
            try:
                result = await charger.call(
                    request,
                    suppress=False,
                    skip_schema_validation=command.get("skip_validation", False),
                )
                payload = snake_to_camel_case(result.__dict__) if result is not None else {}
                emit(event="result", action=action, payload=payload)
            except OCPPError as error:
                emit(event="error", action=action, code=error.code, description=error.description)
            except asyncio.TimeoutError:
                emit(event="timeout", action=action)
        elif op == "answer":
            charger.answers[command["action"]] = command["payload"]
            emit(event="ok")
        elif op == "raw":
            await connection.send(command["text"])
        elif op == "close":
            await connection.close()
            return


async def drive_raw(connection):
    async for command in stdin_lines():
        if command["op"] == "raw":
            await connection.send(command["text"])
        elif command["op"] == "close":
            await connection.close()
            return


async def read_raw(connection):
    try:
        async for frame in connection:
            emit(event="frame", text=frame if isinstance(frame, str) else frame.decode())
    except websockets.ConnectionClosed:
        pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--password")
    parser.add_argument("--protocol", default="ocpp1.6")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()

    headers = {}
    if args.password is not None:
        token = base64.b64encode(f"{args.id}:{args.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    protocols = [p for p in args.protocol.split(",") if p]
    try:
        connection = await websockets.connect(
            f"{args.url}/{args.id}",
            subprotocols=protocols or None,
            additional_headers=headers,
            open_timeout=args.timeout,
            ping_interval=None,
            max_size=2**22,
        )
    except websockets.InvalidStatus as refused:
        emit(event="refused", status=refused.response.status_code,
             body=refused.response.body.decode(errors="replace"))
        return
    emit(event="connected", protocol=connection.subprotocol)

    if args.raw:
        tasks = [asyncio.create_task(read_raw(connection)),
                 asyncio.create_task(drive_raw(connection))]
    else:
        charger = TestCharger(args.id, connection, response_timeout=args.timeout)
        tasks = [asyncio.create_task(charger.start()),
                 asyncio.create_task(drive(charger, connection))]
    # Whichever ends first, the connection (closed by either side) or the test's commands.
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await connection.wait_closed()
    emit(event="closed", code=connection.close_code, reason=connection.close_reason or "")


if __name__ == "__main__":
    asyncio.run(main())
