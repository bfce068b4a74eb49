"""OnlineOnly: the mix-in of operators that download (available only when Blender may go online)."""
import bpy

from ..blender.addon import OFFLINE


class OnlineOnly:
    """Mix-in: the operator downloads, so it is available only when Blender may go online.
    ``disabled_reason`` is the one sentence both the poll message and the preferences show."""

    @classmethod
    def disabled_reason(cls, context):
        return None if bpy.app.online_access else OFFLINE

    @classmethod
    def poll(cls, context):
        reason = cls.disabled_reason(context)
        if reason:
            cls.poll_message_set(reason)
            return False
        return True
