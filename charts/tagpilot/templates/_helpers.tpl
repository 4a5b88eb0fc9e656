{{/* Labels of a controller's objects: include "tagpilot.labels" (dict "component" NAME "root" $) */}}
{{- define "tagpilot.labels" -}}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: tagpilot
{{- end -}}

{{/* The image of one controller: <registry>/<component>:<tag> (one image per controller, as Flux's). */}}
{{- define "tagpilot.image" -}}
{{ required "image.registry is required" .root.Values.image.registry }}/{{ .component }}:{{ default .root.Chart.AppVersion .root.Values.image.tag }}
{{- end -}}

{{/* A controller's ServiceAccount, ClusterRoleBinding, leader-election Role and RoleBinding. */}}
{{- define "tagpilot.identity" -}}
{{- $ns := .root.Release.Namespace -}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .component }}
  namespace: {{ $ns }}
  labels:
    {{- include "tagpilot.labels" . | nindent 4 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: tagpilot:{{ .component }}:{{ $ns }}
  labels:
    {{- include "tagpilot.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: tagpilot:{{ .component }}:{{ $ns }}
subjects:
- kind: ServiceAccount
  name: {{ .component }}
  namespace: {{ $ns }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ .component }}-leader-election
  namespace: {{ $ns }}
  labels:
    {{- include "tagpilot.labels" . | nindent 4 }}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .component }}-leader-election
  namespace: {{ $ns }}
  labels:
    {{- include "tagpilot.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .component }}-leader-election
subjects:
- kind: ServiceAccount
  name: {{ .component }}
  namespace: {{ $ns }}
{{- end -}}

{{/* A controller's Deployment, metrics Service and (optionally) ServiceMonitor. */}}
{{- define "tagpilot.workload" -}}
{{- $root := .root -}}
{{- $ns := $root.Release.Namespace -}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .component }}
  namespace: {{ $ns }}
  labels:
    {{- include "tagpilot.labels" . | nindent 4 }}
spec:
  replicas: {{ $root.Values.replicas }}
  selector:
    matchLabels:
      app: {{ .component }}
  template:
    metadata:
      labels:
        app: {{ .component }}
      annotations:
        prometheus.io/port: "8080"
        prometheus.io/scrape: "true"
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ .component }}
      terminationGracePeriodSeconds: 10
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        runAsGroup: 65534
        fsGroup: 65534
        seccompProfile:
          type: RuntimeDefault
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
      - name: manager
        image: {{ include "tagpilot.image" . }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        args:
        - --watch-all-namespaces={{ $root.Values.watchAllNamespaces }}
        - --log-level={{ $root.Values.logLevel }}
        - --log-encoding=json
        {{- if $root.Values.leaderElection }}
        - --enable-leader-election
        {{- end }}
        - --metrics-addr=:8080
        - --health-addr=:9440
        - {{ .dataArg }}
        {{- if .receiver }}
        - --receiver-addr=:9292
        {{- end }}
        {{- with $root.Values.watchLabelSelector }}
        - --watch-label-selector={{ . }}
        {{- end }}
        {{- range $root.Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
        env:
        - name: RUNTIME_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        ports:
        - name: http-prom
          containerPort: 8080
          protocol: TCP
        - name: healthz
          containerPort: 9440
          protocol: TCP
        {{- if .receiver }}
        - name: http-webhook
          containerPort: 9292
          protocol: TCP
        {{- end }}
        livenessProbe:
          httpGet:
            path: /healthz
            port: healthz
        readinessProbe:
          httpGet:
            path: /readyz
            port: healthz
        resources:
          {{- toYaml .resources | nindent 10 }}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop: [ALL]
        volumeMounts:
        - name: data
          mountPath: {{ .mount }}
      volumes:
      - name: data
        emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .component }}-metrics
  namespace: {{ $ns }}
  labels:
    {{- include "tagpilot.labels" . | nindent 4 }}
spec:
  selector:
    app: {{ .component }}
  ports:
  - name: http-prom
    port: 8080
    targetPort: http-prom
    protocol: TCP
{{- if $root.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .component }}
  namespace: {{ $ns }}
  labels:
    {{- include "tagpilot.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "tagpilot.labels" . | nindent 6 }}
  endpoints:
  - port: http-prom
    interval: {{ $root.Values.serviceMonitor.interval }}
{{- end }}
{{- end -}}
