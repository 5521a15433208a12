"""kombu's filesystem transport, made safe and fast enough for the coordinator.

- Publishing is atomic: kombu writes a message file in place, and a consumer polling the folder can take it
  while it is still empty, fail to decode it and stop ("Unrecoverable error: JSONDecodeError").
- Taking a message is a rename within the folder, atomic where kombu's move to the system temp folder is a copy
  when that lies on another file system (two consumers could both get the message).
- One sorted listing serves many takes: kombu lists and sorts the whole folder for every message, so a backlog
  of n messages costs n log n per message, and a backlog feeds itself.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from contextlib import suppress
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

CLAIMED = ".claimed"  # a folder inside the message folder; its name matches no queue


class Channel(filesystem.Channel):
    """Writes each message under a name no queue matches, then renames it into place; takes by renaming."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._listings: dict[str, deque[str]] = {}

    def _get(self, queue):
        listing = self._listings.get(queue)
        if not listing:
            wanted = f"{queue}.msg"
            names = sorted(n for n in os.listdir(self.data_folder_in) if n.partition(".")[2] == wanted)
            listing = self._listings[queue] = deque(names)
        claimed_folder = os.path.join(self.data_folder_in, CLAIMED)
        while listing:
            name = listing.popleft()
            claimed = os.path.join(claimed_folder, name)
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                if not os.path.isdir(claimed_folder):
                    os.makedirs(claimed_folder, exist_ok=True)
                    listing.appendleft(name)
                continue  # otherwise another consumer took it, or it was purged
            try:
                with open(claimed, "rb") as reader:
                    payload = reader.read()
            finally:
                with suppress(OSError):
                    os.unlink(claimed)
            return loads(bytes_to_str(payload))
        raise Empty()

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
