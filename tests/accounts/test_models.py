"""Users keep one subject identifier for life; usernames and emails are unique regardless of case."""

import uuid

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User


@pytest.mark.django_db
def test_every_user_gets_a_uuid_subject(make_user):
    assert isinstance(make_user().subject, uuid.UUID)
    assert make_user(username="bob").subject != User.objects.get(username="alice").subject


@pytest.mark.django_db
def test_subject_cannot_be_reassigned(make_user):
    user = User.objects.get(pk=make_user().pk)
    original = user.subject
    user.subject = uuid.uuid4()
    with pytest.raises(ValueError, match="never changes"):
        user.save()
    assert User.objects.get(pk=user.pk).subject == original


@pytest.mark.django_db
def test_renaming_keeps_the_subject(make_user):
    user = make_user()
    subject = user.subject
    user.username = "alice2"
    user.save()
    assert User.objects.get(username="alice2").subject == subject


@pytest.mark.django_db
def test_case_variants_of_a_username_are_rejected_by_validation(make_user):
    make_user(username="Dave")
    with pytest.raises(ValidationError, match="already exists"):
        User(username="dave").full_clean(exclude=["password"])


@pytest.mark.django_db
def test_several_users_may_have_no_email(make_user):
    make_user(username="a1")
    make_user(username="a2")
    assert User.objects.filter(email="").count() == 2
