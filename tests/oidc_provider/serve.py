"""Run the test identity provider: migrate its own SQLite file, create one user per IDP_USERS entry
(username:password:group1|group2) and the console's client, then serve on IDP_PORT until killed.
Prints READY once it accepts connections."""

import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.oidc_provider.settings")
sys.path.insert(0, os.getcwd())

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main() -> None:
    call_command("migrate", verbosity=0)
    for entry in os.environ["IDP_USERS"].split(","):
        username, password, groups = entry.split(":")
        user = User.objects.create_user(username, email=f"{username}@idp.example", password=password,
                                        first_name=username.title())
        for name in filter(None, groups.split("|")):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
    Application.objects.create(
        name="console", client_id=os.environ["IDP_CLIENT_ID"], client_secret=os.environ["IDP_CLIENT_SECRET"],
        client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=os.environ["IDP_REDIRECT_URI"], skip_authorization=True, algorithm=Application.RS256_ALGORITHM)
    server = make_server("127.0.0.1", int(os.environ["IDP_PORT"]), WSGIHandler(), server_class=ThreadingServer,
                         handler_class=QuietHandler)
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
