import factory
from django.contrib.auth import get_user_model

from tasks import services


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def profile(user, create, extracted, **kwargs):
        if create:
            services.profile_get(user=user)
            if kwargs:
                services.profile_update(user=user, data=kwargs)


def make_task(user, **kwargs):
    """Create a task through the service, as every write path does."""
    kwargs.setdefault("title", "A task")
    if "timezone" in kwargs:
        kwargs["timezone_name"] = kwargs.pop("timezone")
    return services.task_create(user=user, **kwargs)


def make_category(user, name="Work", **kwargs):
    return services.category_create(user=user, name=name, **kwargs)


def make_tag(user, name="home"):
    return services.tag_create(user=user, name=name)
