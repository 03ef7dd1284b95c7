"""The error every back-office operation raises when it refuses: below ops,
keys, qrissue and releasekeys so each can raise it without importing another."""


class OpError(ValueError):
    """A refused operation; .status is the HTTP status the admin API returns."""

    def __init__(self, msg, status=400):
        super().__init__(msg)
        self.status = status
