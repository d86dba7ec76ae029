"""Local DynamoDB: moto's server, applying one request at a time.

DynamoDB applies each write to an item atomically, condition included. moto's server
handles requests on parallel threads without a lock, so two conditional writes can both
pass their check; serialising requests restores the guarantee that tests rely on.

Usage: python tools/local_dynamodb.py -H 127.0.0.1 -p 8000
"""

import threading

import moto.server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_one_at_a_time = threading.Lock()


class SerialApplication(DomainDispatcherApplication):
    def __call__(self, environ, start_response):
        with _one_at_a_time:
            # moto builds the whole response body inside the call.
            return list(super().__call__(environ, start_response))


moto.server.DomainDispatcherApplication = SerialApplication

if __name__ == "__main__":
    moto.server.main()
