"""Admin of outbound webhooks: subscriptions are saved and deleted through the audited services (the
secret is generated there and never shown here); the outbox rows are read-only (re-send: the delivery
log page, notify:delivery_list)."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from governance.audit.admin import ReadOnlyAdmin
from governance.notify import services
from governance.notify.models import Delivery, EventKind, Notification, OutboundEvent, Subscription
from governance.notify.safety import destination_problem
from registry_ui.client_ip import client_ip


class SubscriptionAdminForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    kinds = forms.MultipleChoiceField(choices=EventKind.choices, required=False, widget=forms.CheckboxSelectMultiple,
                                      help_text="None ticked: every kind.")

    class Meta:
        model = Subscription
        fields = ("name", "url", "kinds", "model_name", "slack", "active")

    def clean_url(self):
        url = self.cleaned_data["url"]
        if problem := destination_problem(url):
            raise forms.ValidationError(problem)
        return url


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionAdminForm
    list_display = ("name", "url", "model_name", "slack", "active", "created_by", "created_at")

    def has_module_permission(self, request):
        return services.may_manage_webhooks(request.user)

    def has_view_permission(self, request, obj=None):
        return services.may_manage_webhooks(request.user)

    def has_add_permission(self, request):
        return services.may_manage_webhooks(request.user)

    def has_change_permission(self, request, obj=None):
        return services.may_manage_webhooks(request.user)

    def has_delete_permission(self, request, obj=None):
        return services.may_manage_webhooks(request.user)

    def save_model(self, request, obj, form, change):
        values = {k: form.cleaned_data[k] for k in services.SUBSCRIPTION_FIELDS}
        if change:
            saved = services.subscription_update(actor=request.user, subscription_id=obj.pk, changes=values,
                                                 source_ip=client_ip(request))
        else:
            saved = services.subscription_create(actor=request.user, **values, source_ip=client_ip(request))
            messages.warning(request, f"Signing secret of {saved.name} (shown once, copy it now): {saved.secret}")
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.subscription_delete(actor=request.user, subscription_id=obj.pk, source_ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for sub in queryset:
                services.subscription_delete(actor=request.user, subscription_id=sub.pk, source_ip=client_ip(request))


@admin.register(OutboundEvent)
class OutboundEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "model_name", "version", "request_id", "occurred_at", "audit_seq")
    list_filter = ("kind",)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "webhook_id", "subscription", "state", "attempts", "response_code", "last_attempt_at")
    list_filter = ("state",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "kind", "subject", "state", "sent_at")
    list_filter = ("state", "kind")
