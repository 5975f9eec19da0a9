"""Read-only representations of the mirror, and the parsers of the list endpoints' query parameters."""

from django.urls import reverse
from rest_framework import serializers

from registry_ui.mirror.models import DatasetInput, ModelVersion, RegisteredModel, RunSnapshot


class PageParams(serializers.Serializer):
    # PageNumberPagination reads `page` itself; checked here so "page=abc" is a 400 that names the
    # parameter rather than a 404 (a page past the end stays DRF's 404 "Invalid page.").
    page = serializers.RegexField(r"^([1-9][0-9]{0,8}|last)$", required=False,
                                  error_messages={"invalid": "page must be a whole number from 1 (or 'last')."})


class ModelSummarySerializer(serializers.ModelSerializer):
    aliases = serializers.SerializerMethodField()
    version_count = serializers.IntegerField(read_only=True)
    latest_version = serializers.IntegerField(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = ["name", "description", "tags", "aliases", "version_count", "latest_version", "created_at",
                  "updated_at", "synced_at", "url"]

    def get_aliases(self, obj) -> dict[str, int]:
        return {a.alias: a.version for a in obj.aliases.all()}

    def get_url(self, obj) -> str:
        return reverse("registry_api:model_detail", kwargs={"name": obj.name})


class VersionSummarySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["version", "stage", "status", "run_id", "description", "tags", "user_id", "created_at",
                  "updated_at", "url"]

    def get_url(self, obj) -> str:
        return reverse("registry_api:version_detail", kwargs={"name": obj.model.name, "version": obj.version})


class ModelDetailSerializer(ModelSummarySerializer):
    versions = serializers.SerializerMethodField()

    class Meta(ModelSummarySerializer.Meta):
        fields = [f for f in ModelSummarySerializer.Meta.fields if f not in ("version_count", "latest_version")]
        fields += ["versions", "versions_url"]

    versions_url = serializers.SerializerMethodField()

    def get_versions_url(self, obj) -> str:
        return reverse("registry_api:version_list", kwargs={"name": obj.name})

    def get_versions(self, obj) -> list[dict]:
        return [{"version": v.version, "stage": v.stage, "status": v.status, "run_id": v.run_id,
                 "url": reverse("registry_api:version_detail", kwargs={"name": obj.name, "version": v.version})}
                for v in obj.newest_versions]


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetInput
        fields = ["name", "digest", "source_type", "source", "context"]


class RunSerializer(serializers.ModelSerializer):
    datasets = DatasetSerializer(many=True, read_only=True)

    class Meta:
        model = RunSnapshot
        fields = ["run_id", "experiment_id", "experiment_name", "run_name", "user", "status", "lifecycle_stage",
                  "start_time", "end_time", "params", "metrics", "tags", "source_name", "entry_point", "git_commit",
                  "parent_run_id", "logged_model_id", "datasets", "fetched_at"]


class VersionDetailSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")

    class Meta:
        model = ModelVersion
        fields = ["model", "version", "stage", "status", "source", "run_id", "run_link", "description", "tags",
                  "user_id", "created_at", "updated_at", "synced_at"]


class VersionDetailResponseSerializer(VersionDetailSerializer):
    """The version detail as answered: the serializer above plus its aliases and run (schema only)."""

    aliases = serializers.ListField(child=serializers.CharField())
    run = RunSerializer(allow_null=True)

    class Meta(VersionDetailSerializer.Meta):
        fields = VersionDetailSerializer.Meta.fields + ["aliases", "run"]


class SyncStatusSerializer(serializers.Serializer):
    last_started_at = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    last_error_at = serializers.DateTimeField(allow_null=True)
    failing = serializers.BooleanField()
    running = serializers.BooleanField()
    last_report = serializers.DictField(help_text="Counts of the last sync (created, updated, changes...).")
