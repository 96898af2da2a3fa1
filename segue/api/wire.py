"""What the surfaces' wire models share."""

from __future__ import annotations

from typing import Annotated

from pydantic import Strict

# A field documented as a JSON boolean takes true or false only: pydantic's lax mode would
# also take "yes", "on", "1" and 1, which no vendor documents and a client would then
# depend on. (Multipart fields, which are text, are turned into booleans before this.)
JsonBool = Annotated[bool, Strict()]
