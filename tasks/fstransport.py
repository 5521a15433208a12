"""kombu's filesystem transport, publishing atomically: a consumer never reads a half-written message.

kombu writes a message file in place; a consumer polling the folder can move it away while it is still empty
and then fails to decode it, which stops the worker ("Unrecoverable error: JSONDecodeError").
"""

from __future__ import annotations

import os
import uuid
from contextlib import suppress
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    """Writes each message under a name no queue matches, then renames it into place."""

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        temporary = os.path.join(self.data_folder_out, f".{uuid.uuid4()}.part")
        try:
            with open(temporary, "wb") as writer:
                writer.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, os.path.join(self.data_folder_out, name))
        except OSError as error:
            with suppress(OSError):
                os.unlink(temporary)
            raise ChannelError(f"Cannot add file {name!r} to directory") from error


class Transport(filesystem.Transport):
    """The filesystem transport with the atomic Channel."""

    Channel = Channel
