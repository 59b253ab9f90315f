"""Turning validation errors into the one-line messages the CLI prints."""

from django.core.exceptions import ValidationError


def one_line(error: ValidationError) -> str:
    """All messages of a ValidationError joined on one line, field names first where there are fields."""
    if hasattr(error, "error_dict"):
        parts = []
        for field, errors in error.message_dict.items():
            prefix = "" if field == "__all__" else f"{field}: "
            parts.extend(prefix + message for message in errors)
        return " ".join(parts)
    return " ".join(error.messages)
